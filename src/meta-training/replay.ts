/**
 * A recorded recipe as the segments it was trained in, to train the same run again from nothing.
 *
 * A shipped GHN is the product of one base schedule and a chain of resumed extensions, each a
 * schedule tail (recipe.tails) that started where the previous segment stopped. Training is
 * deterministic for a seed (the architectures and images of step t depend only on (seed, t)), so
 * running the segments in order, resuming between them, repeats the run step for step. What the
 * recipe does not record is recovered here: where each segment's cosine was heading (its schedule
 * end), which is the next tail's start unless that segment was cut short, and then follows from the
 * learning rate the next tail inherited (a continuation has no warm-up and starts at the current lr).
 */
import { recipeBase, type TrainRecipe } from './recipe.js';
import { trainGhn, type TrainGhnOptions, type TrainResult } from './train.js';

export interface ReplaySegment {
  /** First step of the segment. */
  from: number;
  /** Where the segment's schedule (warm-up, then cosine to 0) ends. */
  scheduleEnd: number;
  /** Where the segment stopped: the next segment's start, or the recipe's last step. */
  stopAt: number;
  /** Peak learning rate and warm-up of the segment's schedule. */
  lr: number;
  warmupSteps: number;
  metaBatch: number;
  images: number;
  poolSize: number;
  diversity?: number;
  trainVariables?: string[];
}

/**
 * The segments of `recipe`: the base (`recipeBase`), then each tail, each stopped where the next begins.
 */
export function replaySegments(recipe: TrainRecipe): ReplaySegment[] {
  const tails = recipe.tails ?? [];
  const base = recipeBase(recipe);
  const starts: Array<Omit<ReplaySegment, 'scheduleEnd' | 'stopAt' | 'poolSize'> & { poolSize?: number }> = [
    // The base's objective is the recipe's own only when no tail replaced it.
    { from: 0, lr: recipe.lr, warmupSteps: recipe.warmupSteps, ...base, ...(tails.length ? {} : { diversity: recipe.diversity, trainVariables: recipe.trainVariables }) },
    ...tails,
  ];
  // Tails recorded before pool sizes were kept the pool of the segment before them.
  let poolSize = base.poolSize;
  return starts.map((s, i) => {
    const next = tails[i]; // the tail after segment i (starts[i + 1])
    // A header's recipe records where the run stopped: the last segment may end before its schedule.
    const stopAt = next ? next.from : Math.min(recipe.steps, (recipe as TrainRecipe & { stepsDone?: number }).stepsDone ?? recipe.steps);
    const scheduleEnd = next ? (next.warmupSteps === 0 && next.lr > 0 ? cosineEnd(s.from, s.lr, s.warmupSteps, next.from, next.lr) : stopAt) : recipe.steps;
    poolSize = s.poolSize ?? poolSize;
    // The objective is the segment's own: a tail without one trained plainly.
    return {
      from: s.from, scheduleEnd, stopAt, lr: s.lr, warmupSteps: s.warmupSteps, metaBatch: s.metaBatch, images: s.images, poolSize,
      ...(s.diversity ? { diversity: s.diversity } : {}),
      ...(s.trainVariables?.length ? { trainVariables: s.trainVariables } : {}),
    };
  });
}

/** The step at which a cosine from `peak` (after `warmup` steps from `from`) reaches 0, given its value `lr` at `at`. */
function cosineEnd(from: number, peak: number, warmup: number, at: number, lr: number): number {
  const t = Math.acos(Math.min(1, Math.max(-1, (2 * lr) / peak - 1))) / Math.PI; // fraction of the cosine done at `at`
  return Math.round(from + warmup + (at - from - warmup) / Math.max(t, 1e-9));
}

/**
 * Trains the run `recorded` describes, segment by segment, into options.checkpointPath. Resumable:
 * an existing checkpoint there skips the segments it has done and continues the one it is in. Stops
 * early (like trainGhn) when options.maxMinutes runs out; run it again to continue.
 */
export async function replayTraining(
  recorded: TrainRecipe, options: Omit<TrainGhnOptions, 'recipe' | 'extend' | 'resume' | 'stopAtStep'>,
): Promise<TrainResult> {
  const { tails: _tails, base: _base, stepsDone: _done, ...base } = recorded as TrainRecipe & { stepsDone?: number };
  const started = performance.now();
  let result: TrainResult | undefined;
  for (const [i, seg] of replaySegments(recorded).entries()) {
    const minutesLeft = options.maxMinutes === undefined ? undefined : options.maxMinutes - (performance.now() - started) / 60000;
    const segmentRecipe = {
      steps: seg.scheduleEnd, metaBatch: seg.metaBatch, images: seg.images, poolSize: seg.poolSize, diversity: seg.diversity ?? 0, trainVariables: seg.trainVariables ?? [],
    };
    result?.model.dispose();
    result = await trainGhn({
      ...options,
      maxMinutes: minutesLeft,
      recipe: i === 0 ? { ...base, ...segmentRecipe, lr: seg.lr, warmupSteps: seg.warmupSteps } : segmentRecipe,
      extend: i === 0 ? undefined : { lr: seg.lr, warmupSteps: seg.warmupSteps },
      resume: true,
      stopAtStep: seg.stopAt,
    });
    if (result.stepsDone < seg.stopAt) break; // out of time
  }
  return result!;
}
