/**
 * ComputationGraph → the plain arrays the GHN reads, computed once per graph (no tfjs here):
 * op kind ids, constant-norm continuous features (MIP), clipped degrees, a (forward, backward)
 * shortest-path bucket per node pair for the attention bias, and the list of slots to decode.
 */
import type { ComputationGraph } from '../graph/computation-graph.js';
import { slotChannelCodes } from '../graph/channel-maps.js';
import { depthFromInputs, forwardDistances } from '../graph/distances.js';
import type { OpNode, ParamSlot } from '../graph/types.js';
import { OP_KINDS, PARAM_ROLES, type EmbeddedParamRole, type LaterParamRole, type OpKind, type ParamRole } from '../graph/vocabulary.js';

/** Hop distances 0..MAX_DISTANCE keep their own bucket; longer ones share MAX_DISTANCE; unreachable gets one more. */
export const MAX_DISTANCE = 8;
/** Buckets per direction: 0..MAX_DISTANCE plus "unreachable". */
export const DISTANCE_BUCKETS = MAX_DISTANCE + 2;
/** Attention-bias table rows: one per (forward bucket, backward bucket) pair. */
export const PAIR_BUCKETS = DISTANCE_BUCKETS * DISTANCE_BUCKETS;
/** Degrees 0..MAX_DEGREE, larger ones clipped. */
export const MAX_DEGREE = 8;

const KIND_ID = new Map<OpKind, number>(OP_KINDS.map((k, i) => [k, i]));
/**
 * The role embedding a role recognized after the shipped GHN was trained is decoded with (a new row
 * would change the trained table's shape). A relative position bias table is a per-position,
 * per-head additive term of position-embedding scale (torchvision draws it trunc-normal, std 0.02,
 * as ViT's position embedding): the closest trained role is pos_embedding.
 */
export const DECODED_AS: Readonly<Record<LaterParamRole, EmbeddedParamRole>> = {
  relative_position_bias: 'pos_embedding',
};

const ROLE_ID = new Map<ParamRole, number>([
  ...PARAM_ROLES.map((r, i) => [r, i] as const),
  ...Object.entries(DECODED_AS).map(([r, as]) => [r as LaterParamRole, PARAM_ROLES.indexOf(as)] as const),
]);

/**
 * Continuous op properties, each mapped to [0, 1] before the [cos(πx/2), sin(πx/2)] encoding.
 * Logs make channel counts from 1 to 8192 and kernels from 1 to 15 spread over the interval.
 */
const CONTINUOUS_FEATURES: ReadonlyArray<(op: OpInfo) => number> = [
  (o) => log2Fraction(o.outChannels, 13), // C_out up to 8192
  (o) => log2Fraction(o.inChannels, 13), // C_in up to 8192
  (o) => log2Fraction(o.kernel, 4), // kernel side up to 16
  (o) => log2Fraction(o.stride, 3), // stride up to 8
  (o) => log2Fraction(o.dilation, 3),
  (o) => (o.inChannels > 1 ? Math.log2(o.groups) / Math.log2(o.inChannels) : 0), // 0 dense … 1 depthwise
  (o) => o.depthFraction,
  (o) => (o.hasParams ? 1 : 0),
];
export const FEATURE_DIM = CONTINUOUS_FEATURES.length * 2;

interface OpInfo {
  outChannels: number;
  inChannels: number;
  kernel: number;
  stride: number;
  dilation: number;
  groups: number;
  depthFraction: number;
  hasParams: boolean;
}

function log2Fraction(value: number, maxLog2: number): number {
  return Math.min(1, Math.max(0, Math.log2(Math.max(1, value)) / maxLog2));
}

/** What the decoder must produce for one parameter slot: the graph's slot plus decoder facts. */
export interface SlotSpec extends Pick<ParamSlot, 'id' | 'initializer' | 'role' | 'shape' | 'storedShape' | 'layout'> {
  /** Index into the graph's op list (row of the node embeddings). */
  readonly opIndex: number;
  readonly roleId: number;
  /** Inputs one output unit sums over (C_in/g·kH·kW for conv, in for linear); 1 for vector roles. */
  readonly fanIn: number;
  /** Weight of a head op (feeds the output with no weighted op in between). */
  readonly isClassifier: boolean;
  /** The owning op is a depthwise convolution. */
  readonly isDepthwise: boolean;
  /** Channel-code index per row (output channel or vector element) when not 0..rows-1 (graph/channel-maps.ts). */
  readonly rowCodes?: Int32Array;
  /** Channel-code index per input column (before taps) when not 0..cols-1. */
  readonly colCodes?: Int32Array;
}

export interface GraphEncoding {
  readonly numOps: number;
  /** OP_KINDS index per op. */
  readonly kindIds: Int32Array;
  /** numOps × FEATURE_DIM, row-major, each pair of columns a unit vector. */
  readonly features: Float32Array;
  readonly inDegree: Int32Array;
  readonly outDegree: Int32Array;
  /** numOps × numOps pair bucket = forwardBucket·DISTANCE_BUCKETS + backwardBucket. */
  readonly pairBuckets: Int32Array;
  readonly slots: readonly SlotSpec[];
}

function kernelOf(op: OpNode): number {
  const k = op.attrs.kernel;
  return k && k.length ? Math.max(...k) : 1;
}

function opInfo(g: ComputationGraph, op: OpNode, depthFraction: number): OpInfo {
  const slots = g.slotsOf(op);
  const weight = slots.find((s) => s.role === 'conv.weight' || s.role === 'linear.weight' || s.role === 'embedding');
  const vector = slots[0];
  const groups = op.attrs.groups ?? 1;
  const outChannels = weight ? weight.shape[0]! : vector ? vector.elements : 0;
  const inChannels = weight ? (weight.shape[1] ?? 1) * groups : outChannels;
  return {
    outChannels,
    inChannels,
    kernel: kernelOf(op),
    stride: op.attrs.stride?.length ? Math.max(...op.attrs.stride) : 1,
    dilation: op.attrs.dilation?.length ? Math.max(...op.attrs.dilation) : 1,
    groups,
    depthFraction,
    hasParams: slots.length > 0,
  };
}

/** Fan-in of the weight roles that are He-scaled; other roles are not fan-in scaled. */
function fanInOf(slot: ParamSlot): number {
  const isFanInScaled = slot.role === 'conv.weight' || slot.role === 'linear.weight';
  return isFanInScaled ? slot.shape.slice(1).reduce((a, b) => a * b, 1) : 1;
}

function bucket(distance: number): number {
  return distance < 0 ? DISTANCE_BUCKETS - 1 : Math.min(distance, MAX_DISTANCE);
}

export function encodeGraph(g: ComputationGraph): GraphEncoding {
  const n = g.ops.length;
  const depth = depthFromInputs(g);
  const maxDepth = Math.max(1, ...depth);
  const kindIds = new Int32Array(n);
  const features = new Float32Array(n * FEATURE_DIM);
  const inDegree = new Int32Array(n);
  const outDegree = new Int32Array(n);
  const position = new Map(g.ops.map((op, k) => [op.id, k]));
  const heads = new Set(g.headOps().map((op) => op.id));
  const slots: SlotSpec[] = [];
  const channelCodes = slotChannelCodes(g);

  g.ops.forEach((op, k) => {
    kindIds[k] = KIND_ID.get(op.kind)!;
    const info = opInfo(g, op, Math.max(0, depth[k]!) / maxDepth);
    CONTINUOUS_FEATURES.forEach((feature, f) => {
      const x = feature(info);
      features[k * FEATURE_DIM + 2 * f] = Math.cos((Math.PI * x) / 2);
      features[k * FEATURE_DIM + 2 * f + 1] = Math.sin((Math.PI * x) / 2);
    });
    inDegree[k] = Math.min(MAX_DEGREE, new Set(g.graph.inNeighbors(op.id)).size);
    outDegree[k] = Math.min(MAX_DEGREE, new Set(g.graph.outNeighbors(op.id)).size);
    for (const slot of g.slotsOf(op)) {
      slots.push({
        id: slot.id,
        initializer: slot.initializer,
        opIndex: position.get(slot.op) ?? k,
        role: slot.role,
        roleId: ROLE_ID.get(slot.role)!,
        shape: slot.shape,
        storedShape: slot.storedShape,
        layout: slot.layout,
        fanIn: fanInOf(slot),
        isClassifier: heads.has(op.id),
        isDepthwise: op.kind === 'depthwise_conv',
        rowCodes: channelCodes.get(slot.id)?.rows,
        colCodes: channelCodes.get(slot.id)?.cols,
      });
    }
  });

  const forward = forwardDistances(g);
  const pairBuckets = new Int32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      pairBuckets[i * n + j] = bucket(forward[i * n + j]!) * DISTANCE_BUCKETS + bucket(forward[j * n + i]!);
    }
  }
  return { numOps: n, kindIds, features, inDegree, outDegree, pairBuckets, slots };
}
