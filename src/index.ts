/** ghn's library API: the pipeline entry points first, then the stages for finer control. */
export { inspect, loadModel, type ModelSource } from './api/inspect.js';
export { predict, DEFAULT_GHN_PATH, DEFAULT_PREDICT_OPTIONS, type PredictOptions, type PredictReport, type PredictResult } from './api/predict.js';
export { predictSamples, SAMPLE_MIX, type PredictSamplesOptions, type PredictSamplesResult, type SampleInfo, type SampleResult } from './api/predict-samples.js';
export { finetuneModel, type FinetuneModelOptions, type FinetuneReport } from './api/finetune.js';
export { evaluateEnsemble, distill, ensembleFigures, DatasetSplits, type EnsembleReport, type DistillReport, type Member } from './api/ensemble.js';
export { resolveDataset } from './data/sources.js';
export { loadDataset, DATASET_NAMES, type DatasetName } from './api/datasets.js';
export { trainAndSave, evaluateSavedGhn } from './api/ghn-training.js';
export { GhnError, type GhnErrorKind } from './errors.js';
export { initBackend, describeBackend } from './engine/backend.js';

// Stages
export * as onnx from './onnx/index.js';
export { buildGraph, summarize, ComputationGraph, type GraphSummary, type ParamSlot, type OpNode } from './graph/index.js';
export { GraphExecutor } from './engine/executor.js';
export { loadGhn, saveGhn } from './ghn/serialize.js';
export { predictParameters } from './ghn/predict-params.js';
export { diversify, diversifyAsync } from './postprocess/diversify.js';
export { writeParameters } from './graph/write-parameters.js';
export { calibrate, type CalibrationReport, type CalibrationImages } from './predict/calibrate.js';
export { validateWithOrt } from './predict/validate.js';
