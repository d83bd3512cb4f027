/**
 * Diversity post-processing of predicted weights (Knyazev et al. 2022). GHN decoders tile one
 * block into large weights, so predicted tensors are low-rank and different seeds/architectures
 * give near-identical filters. For every ≥ 2-D weight except the classifier, from a chosen depth on:
 *   1. W_mat = W as (C_out, −1) in canonical layout; its transpose when wide, so it is tall;
 *   2. W += β · std(corrcoef(rows of W_mat)) · N(0, 1);
 *   3. W_mat ← Q · sign(diag R) of its thin QR, reshaped back;
 *   4. optionally rescale to the pre-QR standard deviation (see `keepScale`).
 */
import { GhnError } from '../errors.js';
import type { ParamRole, StorageLayout } from '../graph/index.js';
import { ROLE_INFO } from '../graph/vocabulary.js';
import { createRng, deriveSeed } from '../util/random.js';
import { choleskyQrOrt } from './cholesky-qr-ort.js';
import { choleskyQrTf, tfQrAvailable } from './cholesky-qr-tf.js';
import { thinQrColumnMajor } from './qr.js';
import { transposeInto } from './transpose.js';
import { noisyCanonical, standardDeviation, tallWork, type StoredWeight } from './weight-matrix.js';

/**
 * The result is stored as float32 (rounding alone leaves ~1e-7·√n in QᵀQ − I), so a float64-exact
 * Q is wasted work: accepting 1e-6 lets moderately ill-conditioned weights skip the second pass.
 */
const FLOAT32_ORTHOGONALITY = 1e-6;
/**
 * Accepted probe estimate of ‖QᵀQ − I‖_F (×4 safety) for the float32 tfjs path, for n columns.
 * float32 rounding alone spreads ~1e-7 over all n² entries, an estimate of ~2e-7·n (measured:
 * 1.1e-4 at n = 512, max entry 3e-6), so a fixed 1e-6 is out of reach; 2e-5·√n passes that floor
 * up to n = 2048 and rejects a first pass spoiled by conditioning (cond(A)²·ε₃₂, 0.6 for a random
 * 512×512), which then gets the second pass.
 */
const tfOrthogonality = (n: number): number => 2e-5 * Math.sqrt(n);
/** Below this m·n² the float64 JS loops beat the tfjs round trip (tensor upload, transposes, download). */
const TF_MIN_WORK = 1 << 20;
/** Below this m·n² the float64 JS loops beat the onnxruntime calls (~0.2 ms each, several per QR). */
const ORT_MIN_WORK = 1 << 18;
/**
 * Accepted probe estimate of ‖QᵀQ − I‖_F for the float64 onnxruntime path: a tenth of what the
 * float32 rounding of the stored result puts there anyway (see tfOrthogonality), so one pass
 * suffices up to cond(A) ≈ 1e5.
 */
const ortOrthogonality = (n: number): number => 2e-6 * Math.sqrt(n);

/** What diversify needs to know of a parameter slot; give them in topological order. */
export interface DiversifySlot {
  /** Key of the slot's values in the tensor map. */
  readonly id: string;
  readonly role: ParamRole;
  /** Canonical shape: conv [C_out, C_in/groups, kH, kW], linear [out, in]. */
  readonly shape: readonly number[];
  /** How the values are stored; 'transposed' = a 2-D weight stored as [in, out]. Default 'canonical'. */
  readonly layout?: StorageLayout;
  /** The model's output head: left exactly as predicted. */
  readonly isClassifier: boolean;
}

export interface DiversifyOptions {
  /** β: noise scale relative to std(corrcoef(W_mat)). 0 turns the noise off. */
  noise: number;
  /** Replace each processed weight by the orthonormal factor of its QR. */
  orthogonalize: boolean;
  /** First processed weight, as an index among ≥ 2-D weights in topological order (classifier included in the count). */
  fromLayer: number;
  seed: number;
  /**
   * Rescale each orthogonalized tensor to the standard deviation it had just before the QR.
   * Orthonormal columns fix every singular value at 1, i.e. an element variance of 1/rows of the
   * tall matrix: 1/fan_in (half of He init) for most convs, but 1/C_out for expanding 1×1 convs,
   * and in every case unrelated to the scale the GHN learned for that layer (which BN-free nets
   * depend on). Keeping the GHN's scale and taking only the direction from the QR avoids that.
   */
  keepScale: boolean;
  /**
   * Write each processed weight into its input array instead of a new one: for a caller that does
   * not need the raw values afterwards (`predict`). Saves allocating the model's size again (fresh
   * memory costs a page fault per 4 KiB; ~25,000 for ResNet-50, several µs each on a VM).
   */
  inPlace: boolean;
}

export const DEFAULT_DIVERSIFY_OPTIONS: Readonly<DiversifyOptions> = {
  noise: 3e-5,
  orthogonalize: true,
  fromLayer: 0,
  seed: 0,
  keepScale: true,
  inPlace: false,
};

export interface DiversifyReport {
  /** Weights that were changed. */
  processed: number;
  /** Slots left exactly as given (1-D, not weights, classifier, before fromLayer, or nothing to do). */
  skipped: number;
  ms: number;
}

export interface DiversifyResult {
  /**
   * Same keys as the input; untouched slots keep their original arrays, processed ones are new
   * arrays (or, with `inPlace`, the input arrays with the new values).
   */
  tensors: Map<string, Float32Array>;
  report: DiversifyReport;
}

/** A weight the procedure applies to: weight-like role and at least two dimensions. */
export function isDiversifiable(slot: Pick<DiversifySlot, 'role' | 'shape'>): boolean {
  return (ROLE_INFO[slot.role]?.isWeight ?? false) && slot.shape.length >= 2;
}

/** One weight to process: its values, W_mat's shape and the seed of its own random stream. */
interface WeightJob extends StoredWeight {
  slot: DiversifySlot;
  seed: number;
}

/** The weights diversify changes, validated, in order. */
function weightJobs(tensors: Map<string, Float32Array>, slots: readonly DiversifySlot[], opts: DiversifyOptions): WeightJob[] {
  const jobs: WeightJob[] = [];
  let weightIndex = -1;
  for (const slot of slots) {
    if (!isDiversifiable(slot)) continue;
    weightIndex++;
    if (slot.isClassifier || weightIndex < opts.fromLayer) continue;
    if (opts.noise === 0 && !opts.orthogonalize) continue;
    const values = tensors.get(slot.id);
    if (values === undefined) throw new GhnError('bad-input', `diversify: no values for parameter ${slot.id}`);
    const rows = slot.shape[0];
    const cols = slot.shape.slice(1).reduce((a, b) => a * b, 1);
    if (values.length !== rows * cols) {
      throw new GhnError('bad-input', `diversify: ${slot.id} has ${values.length} values, shape [${slot.shape.join(', ')}] needs ${rows * cols}`);
    }
    if (rows * cols === 0) continue;
    if (slot.layout === 'transposed' && slot.shape.length !== 2) {
      throw new GhnError('bad-input', `diversify: ${slot.id} is stored transposed but is not 2-D`);
    }
    // Per-weight stream: a weight's noise does not depend on which other weights are processed.
    jobs.push({ slot, values, rows, cols, storedTransposed: slot.layout === 'transposed', seed: deriveSeed(opts.seed, weightIndex) });
  }
  return jobs;
}

/** Synchronous diversify: QR in float64 JS, or float32 tfjs products when a fast tfjs backend is set. */
export function diversify(
  tensors: Map<string, Float32Array>,
  slots: readonly DiversifySlot[],
  options: Partial<DiversifyOptions> = {},
): DiversifyResult {
  const start = performance.now();
  const opts = resolveOptions(options);
  const out = new Map(tensors);
  const jobs = weightJobs(tensors, slots, opts);
  for (const job of jobs) out.set(job.slot.id, diversifyWeight(job, opts));
  return { tensors: out, report: { processed: jobs.length, skipped: slots.length - jobs.length, ms: performance.now() - start } };
}

/**
 * diversify with the QR of large weights in float64 on onnxruntime (one CholeskyQR pass is exact
 * for predicted weights, whose conditioning defeats float32), small ones in float64 JS. Same
 * semantics and the same noise as `diversify`; the fastest path, used by `predict`.
 *
 * W_mat and its tall copy live in two buffers reused from weight to weight: fresh 10–40 MB arrays
 * per weight cost page faults and garbage collections.
 */
export async function diversifyAsync(
  tensors: Map<string, Float32Array>,
  slots: readonly DiversifySlot[],
  options: Partial<DiversifyOptions> = {},
): Promise<DiversifyResult> {
  const start = performance.now();
  const opts = resolveOptions(options);
  const out = new Map(tensors);
  const jobs = weightJobs(tensors, slots, opts);
  const onOrt = ({ rows, cols }: WeightJob) => opts.orthogonalize && Math.max(rows, cols) * Math.min(rows, cols) ** 2 >= ORT_MIN_WORK;
  const largest = Math.max(0, ...jobs.filter(onOrt).map((j) => j.rows * j.cols));
  const scratch: Scratch = { canonical: new Float64Array(largest), tall: new Float64Array(largest) };
  for (const job of jobs) {
    out.set(job.slot.id, onOrt(job) ? await orthonormalizeOnOrt(job, prepareTall(job, opts, scratch), opts) : diversifyWeight(job, opts));
  }
  return { tensors: out, report: { processed: jobs.length, skipped: slots.length - jobs.length, ms: performance.now() - start } };
}

/** A large weight ready for its QR: the tall matrix column-major (m×n) and W_mat's standard deviation. */
interface TallWeight {
  tall: Float64Array;
  m: number;
  n: number;
  std: number;
}

interface Scratch {
  canonical: Float64Array;
  tall: Float64Array;
}

function prepareTall(job: WeightJob, opts: DiversifyOptions, scratch: Scratch): TallWeight {
  const size = job.rows * job.cols;
  const { values: w, std } = noisyCanonical(job, opts.noise, createRng(job.seed), scratch.canonical.subarray(0, size));
  // Wide W_mat is its own column-major tall matrix; the ORT path does not overwrite it.
  const { work, m, n } = tallWork(w, job.rows, job.cols, job.rows < job.cols ? w : scratch.tall.subarray(0, size));
  return { tall: work, m, n, std };
}

function resolveOptions(options: Partial<DiversifyOptions>): DiversifyOptions {
  const opts: DiversifyOptions = { ...DEFAULT_DIVERSIFY_OPTIONS };
  for (const key of Object.keys(opts) as (keyof DiversifyOptions)[]) {
    if (options[key] !== undefined) (opts as unknown as Record<string, unknown>)[key] = options[key];
  }
  if (!Number.isFinite(opts.noise) || opts.noise < 0) throw new GhnError('usage', `noise must be ≥ 0, got ${opts.noise}`);
  if (!Number.isInteger(opts.fromLayer) || opts.fromLayer < 0) throw new GhnError('usage', `fromLayer must be an integer ≥ 0, got ${opts.fromLayer}`);
  if (!Number.isFinite(opts.seed)) throw new GhnError('usage', `seed must be a number, got ${opts.seed}`);
  return opts;
}

/** One weight: values in stored layout in, new values in stored layout out. */
function diversifyWeight(job: WeightJob, opts: DiversifyOptions): Float32Array {
  const { rows, cols } = job;
  const { values: w, std } = noisyCanonical(job, opts.noise, createRng(job.seed));
  if (opts.orthogonalize) {
    const tall = tallWork(w, rows, cols);
    writeBackOrthonormal(w, rows, cols, orthonormalFactor(tall.work, tall.m, tall.n), opts.keepScale ? std : undefined);
  }
  return toStored(w, rows, cols, job.storedTransposed, opts.inPlace ? job.values : undefined);
}

/**
 * A prepared weight's QR on onnxruntime in float64 (see cholesky-qr-ort.ts), written straight into
 * the stored layout (no intermediate canonical copy of Q).
 */
async function orthonormalizeOnOrt(job: WeightJob, weight: TallWeight, opts: DiversifyOptions): Promise<Float32Array> {
  const { rows, cols } = job;
  const { tall, m, n } = weight;
  const fast = await choleskyQrOrt(tall, m, n, ortOrthogonality(n));
  // Householder may overwrite the prepared matrix: it is not read again.
  const q = fast !== null ? fast.q : thinQrColumnMajor(tall, m, n, { tolerance: FLOAT32_ORTHOGONALITY }).q;
  const factor = opts.keepScale ? scaleFactor(weight.std, q) : 1;
  // q is the tall matrix column-major: W_mat row-major when wide, W_matᵀ row-major when tall.
  // The values were copied into the tall matrix, so with inPlace they can take the result.
  const out = opts.inPlace ? job.values : new Float32Array(rows * cols);
  const wide = rows < cols;
  if (wide !== job.storedTransposed) { // wide & canonical, or tall & stored as W_matᵀ
    for (let i = 0; i < out.length; i++) out[i] = q[i]! * factor;
  } else {
    // Stored layout is q's transpose: q is n×m row-major.
    transposeInto(q, n, m, out, factor);
  }
  return out;
}

/** The factor that gives Q the standard deviation `before` (1 when Q is constant). */
function scaleFactor(before: number, q: Float64Array): number {
  const after = standardDeviation(q);
  return after > 0 ? before / after : 1;
}

function toStored(w: Float64Array, rows: number, cols: number, storedTransposed: boolean, result: Float32Array = new Float32Array(rows * cols)): Float32Array {
  if (storedTransposed) {
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) result[c * rows + r] = w[r * cols + c];
  } else {
    for (let i = 0; i < result.length; i++) result[i] = w[i];
  }
  return result;
}

/** W_mat ← the tall orientation's Q (column-major), rescaled to the standard deviation keepStd (W_mat's before the QR) when given. */
function writeBackOrthonormal(w: Float64Array, rows: number, cols: number, q: ArrayLike<number>, keepStd?: number): void {
  if (rows < cols) {
    for (let i = 0; i < w.length; i++) w[i] = q[i];
  } else {
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) w[r * cols + c] = q[c * rows + r];
  }
  if (keepStd !== undefined) {
    const factor = scaleFactor(keepStd, w);
    for (let i = 0; i < w.length; i++) w[i] *= factor;
  }
}

/** Q of the column-major tall m×n `work` (which may be overwritten): tfjs when it pays, else float64 JS. */
function orthonormalFactor(work: Float64Array, m: number, n: number): Float32Array | Float64Array {
  if (m * n * n >= TF_MIN_WORK && tfQrAvailable()) {
    const fast = choleskyQrTf(work, m, n, tfOrthogonality(n));
    if (fast !== null) return fast.q;
  }
  // No fast backend, a small matrix, or too ill-conditioned for float32 CholeskyQR2.
  return thinQrColumnMajor(work, m, n, { tolerance: FLOAT32_ORTHOGONALITY }).q;
}
