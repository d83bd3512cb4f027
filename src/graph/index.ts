export { buildGraph } from './build.js';
export { ComputationGraph } from './computation-graph.js';
export { summarize, type GraphSummary } from './summary.js';
export type { ParamSlot, BufferSlot, OpNode, OpAttributes, StorageLayout, Unsupported } from './types.js';
export * from './vocabulary.js';
export { depthFromInputs, forwardDistances } from './distances.js';
export { writeParameters, type SlotTensors, type WrittenParameters } from './write-parameters.js';
