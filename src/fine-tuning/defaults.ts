/** Defaults of the training code that the command line shows, apart from the trainers so that it can show them without loading tfjs. */

/** Batches that re-estimate BatchNorm running statistics for the final weights after fine-tuning. */
export const DEFAULT_BN_RECALIBRATION_BATCHES = 10;
/**
 * Labeled training images the classifier is refitted on in closed form after fine-tuning
 * (head-refit.ts): the count `ghn predict` fits a prediction's head on (calibration-data.ts).
 */
export const DEFAULT_HEAD_REFIT_IMAGES = 8192;
