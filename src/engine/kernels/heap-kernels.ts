/**
 * Data-movement kernels the wasm backend lacks or runs slowly, written as plain loops over the
 * wasm heap (no copies in or out). Each matches the cpu backend's semantics exactly.
 *   MaxPoolGrad       gradient goes to the first maximum of each window (as tfjs cpu)
 *   AvgPoolGrad       dy / (kh·kw) spread over each window (tfjs semantics); global pools as block copies
 *   UnsortedSegmentSum  gather/embedding gradient
 *   Tile
 *   Slice             (the backend's copies the whole input out of the heap first)
 *   DepthwiseConv2dNativeBackpropFilter  (a big-kernel depthwise conv is 10–15× slower than this loop)
 *   Cast to the same dtype, and Identity (clone), share the buffer as Reshape does, and as the cpu
 *   backend's Identity does: tfjs tensors are immutable (Variable.assign swaps buffers), so the
 *   copies the wasm backend made were pure cost (every customGrad save, every ReLU gradient cast).
 */
import * as tf from '../tfjs-core.js';
import { convGeometry, type PadSpec, type RoundingMode, asPair } from './conv-geometry.js';
import { WASM, type WasmBackendView, wasmView } from './kernel-utils.js';

type HeapImpl = (backend: WasmBackendView, inputs: tf.NamedTensorInfoMap, attrs: Record<string, unknown>) => tf.TensorInfo;

function heapKernel(kernelName: string, impl: HeapImpl): tf.KernelConfig {
  return {
    kernelName,
    backendName: WASM,
    kernelFunc: ({ inputs, attrs, backend }) => impl(wasmView(backend), inputs, attrs as Record<string, unknown>),
  };
}

/** Allocate the output first: malloc may grow the heap and detach earlier views. */
function output(backend: WasmBackendView, shape: number[], dtype: tf.DataType = 'float32'): { info: tf.TensorInfo; view: () => Float32Array } {
  const info = backend.makeOutput(shape, dtype);
  return { info, view: () => backend.typedArrayFromHeap(info) as Float32Array };
}

interface PoolAttrs { filterSize: number | number[]; strides: number | number[]; pad: PadSpec; dimRoundingMode?: RoundingMode }

function poolInfo(shape: number[], a: PoolAttrs) {
  return tf.backend_util.computePool2DInfo(shape as [number, number, number, number], asPair(a.filterSize) as [number, number],
    asPair(a.strides) as [number, number], 1, a.pad as 'same', a.dimRoundingMode);
}

const maxPoolGradKernel = heapKernel('MaxPoolGrad', (backend, inputs, attrs) => {
  const { dy, input } = inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const info = poolInfo(input.shape, attrs as unknown as PoolAttrs);
  const { batchSize: nb, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  const top = info.padInfo.top, left = info.padInfo.left;
  const out = output(backend, input.shape);
  const dx = out.view();
  const x = backend.typedArrayFromHeap(input) as Float32Array;
  const g = backend.typedArrayFromHeap(dy) as Float32Array;
  if (sh === fh && sw === fw && top === 0 && left === 0 && oh * fh <= h && ow * fw <= w) {
    // Windows tile the input without overlap: no read-modify-write, ~3.5× faster than the general
    // loop. Uncovered edge rows/columns stay zero.
    if (fh === 2 && fw === 2) {
      maxPoolGrad2x2(x, g, dx, nb, h, w, c, oh, ow);
      return out.info;
    }
    if (oh * fh !== h || ow * fw !== w) dx.fill(0);
    maxPoolGradTiled(x, g, dx, nb, h, w, c, oh, ow, fh, fw);
    return out.info;
  }
  dx.fill(0);
  // Channels innermost (contiguous in NHWC): one running max and argmax per channel.
  const best = new Float32Array(c);
  const at = new Int32Array(c);
  for (let b = 0; b < nb; b++) {
    for (let i = 0; i < oh; i++) {
      const y0 = i * sh - top;
      const yLo = Math.max(0, y0), yHi = Math.min(h, y0 + fh);
      for (let j = 0; j < ow; j++) {
        const x0 = j * sw - left;
        const xLo = Math.max(0, x0), xHi = Math.min(w, x0 + fw);
        best.fill(-Infinity);
        at.fill(-1);
        // Scan order matches the cpu backend (rows, then columns); strict '>' keeps the first maximum.
        for (let y = yLo; y < yHi; y++) {
          for (let xx = xLo; xx < xHi; xx++) {
            const base = ((b * h + y) * w + xx) * c;
            for (let ch = 0; ch < c; ch++) {
              const v = x[base + ch]!;
              if (v > best[ch]! || at[ch]! < 0) { best[ch] = v; at[ch] = base + ch; }
            }
          }
        }
        const gBase = ((b * oh + i) * ow + j) * c;
        for (let ch = 0; ch < c; ch++) {
          const a = at[ch]!;
          if (a >= 0) dx[a] = dx[a]! + g[gBase + ch]!;
        }
      }
    }
  }
  return out.info;
});

/**
 * 2×2 / stride 2: the first maximum of each window (scan order, strict '>') gets dy. The running
 * argmax is updated arithmetically, not by branches: on real activations the comparisons are
 * unpredictable, and the branchy loop spent most of its time in mispredictions (measured,
 * 64×28×28×32 after ReLU: 8.8 → 4.1 ms).
 */
function maxPoolGrad2x2(x: Float32Array, g: Float32Array, dx: Float32Array, nb: number, h: number, w: number, c: number, oh: number, ow: number): void {
  const row = w * c;
  dx.fill(0); // every element but one per window stays zero
  let gi = 0;
  for (let b = 0; b < nb; b++) {
    for (let i = 0; i < oh; i++) {
      let corner = (b * h + 2 * i) * row;
      for (let j = 0; j < ow; j++, corner += 2 * c) {
        for (let ch = 0; ch < c; ch++, gi++) {
          const p0 = corner + ch, p1 = p0 + c, p2 = p0 + row, p3 = p2 + c;
          let at = p0 + Number(x[p1]! > x[p0]!) * c;
          at += Number(x[p2]! > x[at]!) * (p2 - at);
          at += Number(x[p3]! > x[at]!) * (p3 - at);
          dx[at] = g[gi]!;
        }
      }
    }
  }
}

/** Non-overlapping fh×fw windows (stride = size, no padding), any size. */
function maxPoolGradTiled(x: Float32Array, g: Float32Array, dx: Float32Array, nb: number, h: number, w: number, c: number, oh: number, ow: number, fh: number, fw: number): void {
  for (let b = 0; b < nb; b++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        const corner = ((b * h + i * fh) * w + j * fw) * c;
        const gBase = ((b * oh + i) * ow + j) * c;
        for (let ch = 0; ch < c; ch++) {
          let best = -Infinity, at = corner + ch, found = false;
          for (let p = 0; p < fh; p++) {
            for (let q = 0; q < fw; q++) {
              const idx = corner + (p * w + q) * c + ch;
              const v = x[idx]!;
              if (v > best || !found) { best = v; at = idx; found = true; }
            }
          }
          const gv = g[gBase + ch]!;
          for (let p = 0; p < fh; p++) {
            for (let q = 0; q < fw; q++) {
              const idx = corner + (p * w + q) * c + ch;
              dx[idx] = idx === at ? gv : 0;
            }
          }
        }
      }
    }
  }
}

const avgPoolGradKernel = heapKernel('AvgPoolGrad', (backend, inputs, attrs) => {
  const { dy, input } = inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const info = poolInfo(input.shape, attrs as unknown as PoolAttrs);
  const { batchSize: nb, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  const top = info.padInfo.top, left = info.padInfo.left;
  const scale = 1 / (fh * fw);
  const out = output(backend, input.shape);
  const dx = out.view();
  const g = backend.typedArrayFromHeap(dy) as Float32Array;
  if (oh === 1 && ow === 1 && fh === h && fw === w && top === 0 && left === 0) {
    // Global pooling (GlobalAveragePool, spatial means): every pixel of image b gets dy[b]/(h·w).
    // One scaled row, then doubling block copies: memcpy speed instead of h·w·c read-modify-writes.
    const plane = h * w * c;
    for (let b = 0; b < nb; b++) {
      const base = b * plane;
      for (let ch = 0; ch < c; ch++) dx[base + ch] = g[b * c + ch]! * scale;
      for (let filled = c; filled < plane; filled *= 2) dx.copyWithin(base + filled, base, base + Math.min(filled, plane - filled));
    }
    return out.info;
  }
  dx.fill(0);
  for (let b = 0; b < nb; b++) {
    for (let i = 0; i < oh; i++) {
      const y0 = i * sh - top;
      const yLo = Math.max(0, y0), yHi = Math.min(h, y0 + fh);
      for (let j = 0; j < ow; j++) {
        const x0 = j * sw - left;
        const xLo = Math.max(0, x0), xHi = Math.min(w, x0 + fw);
        const gBase = ((b * oh + i) * ow + j) * c;
        for (let y = yLo; y < yHi; y++) {
          for (let xx = xLo; xx < xHi; xx++) {
            const dBase = ((b * h + y) * w + xx) * c;
            for (let ch = 0; ch < c; ch++) dx[dBase + ch] = dx[dBase + ch]! + g[gBase + ch]! * scale;
          }
        }
      }
    }
  }
  return out.info;
});

const unsortedSegmentSumKernel = heapKernel('UnsortedSegmentSum', (backend, inputs, attrs) => {
  const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = (attrs as { numSegments: number }).numSegments;
  // segmentIds covers the leading axes of x; each id selects a row of the trailing size.
  const idCount = segmentIds.shape.reduce((a, b) => a * b, 1);
  const rowShape = x.shape.slice(segmentIds.shape.length);
  const rowSize = rowShape.reduce((a, b) => a * b, 1);
  const out = output(backend, [numSegments, ...rowShape], x.dtype);
  const dst = out.view();
  // Accumulate in float64 so repeated ids (e.g. a popular token) do not drift.
  const acc = new Float64Array(numSegments * rowSize);
  const src = backend.typedArrayFromHeap(x) as Float32Array;
  const ids = backend.typedArrayFromHeap(segmentIds) as Int32Array;
  for (let r = 0; r < idCount; r++) {
    const id = ids[r]!;
    if (id < 0 || id >= numSegments) continue; // TF drops out-of-range ids
    const o = id * rowSize, s = r * rowSize;
    for (let k = 0; k < rowSize; k++) acc[o + k] = acc[o + k]! + src[s + k]!;
  }
  dst.set(acc);
  return out.info;
});

const tileKernel = heapKernel('Tile', (backend, inputs, attrs) => {
  const x = inputs.x!;
  const reps = (attrs as { reps: number[] }).reps;
  const rank = x.shape.length;
  const outShape = x.shape.map((d, i) => d * reps[i]!);
  const out = output(backend, outShape, x.dtype);
  const dst = backend.typedArrayFromHeap(out.info);
  const src = backend.typedArrayFromHeap(x);
  const total = dst.length;
  if (total === 0) return out.info;
  // Copy the source once into the output's leading corner, then replicate blocks outward
  // from the innermost axis: each axis repeats the contiguous block built so far.
  const inStrides = new Array<number>(rank).fill(1);
  const outStrides = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) {
    inStrides[i] = inStrides[i + 1]! * x.shape[i + 1]!;
    outStrides[i] = outStrides[i + 1]! * outShape[i + 1]!;
  }
  // Place source rows (innermost axis) at their output positions.
  const inner = x.shape[rank - 1] ?? 1;
  const rows = src.length / Math.max(1, inner);
  for (let r = 0; r < rows; r++) {
    let rem = r, o = 0;
    for (let a = rank - 2; a >= 0; a--) {
      const d = x.shape[a]!;
      o += (rem % d) * outStrides[a]!;
      rem = Math.floor(rem / d);
    }
    dst.set(src.subarray(r * inner, r * inner + inner), o);
  }
  // Replicate from the innermost axis outward: along axis a, the block of size
  // x.shape[a] × outStrides[a] is copied reps[a]−1 times, for every index of the outer axes.
  for (let a = rank - 1; a >= 0; a--) {
    const block = x.shape[a]! * outStrides[a]!;
    if (reps[a] === 1) continue;
    let outer = 1;
    for (let k = 0; k < a; k++) outer *= x.shape[k]!;
    for (let o = 0; o < outer; o++) {
      let base = 0, rem = o;
      for (let k = a - 1; k >= 0; k--) {
        const d = x.shape[k]!;
        base += (rem % d) * outStrides[k]!;
        rem = Math.floor(rem / d);
      }
      for (let rpt = 1; rpt < reps[a]!; rpt++) dst.copyWithin(base + rpt * block, base, base + block);
    }
  }
  return out.info;
});

/**
 * Slice as a few memcpy's inside the heap: the innermost contiguous run (the sliced axis times all
 * fully-kept axes after it) is copied per index of the remaining outer axes.
 */
export function makeSliceKernel(original: tf.KernelConfig): tf.KernelConfig {
  return heapKernel('Slice', (backend, inputs, attrs) => {
    const x = inputs.x!;
    if ((x.dtype !== 'float32' && x.dtype !== 'int32') || x.shape.length === 0) {
      return original.kernelFunc({ inputs, attrs: attrs as tf.NamedAttrMap, backend: backend as unknown as tf.KernelBackend }) as tf.TensorInfo;
    }
    const { begin, size } = attrs as { begin: number | number[]; size: number | number[] };
    const [b0, s0] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, begin, size);
    const rank = x.shape.length;
    const out = output(backend, s0, x.dtype);
    const total = s0.reduce((p, d) => p * d, 1);
    if (total === 0) return out.info;
    const strides = new Array<number>(rank).fill(1);
    for (let i = rank - 2; i >= 0; i--) strides[i] = strides[i + 1]! * x.shape[i + 1]!;
    // Axes after `inner` are kept whole, so each run is contiguous in x.
    let inner = rank - 1;
    while (inner > 0 && b0[inner] === 0 && s0[inner] === x.shape[inner]) inner--;
    const run = s0.slice(inner).reduce((p, d) => p * d, 1);
    const src = backend.typedArrayFromHeap(x);
    const dst = backend.typedArrayFromHeap(out.info);
    const idx = new Array<number>(inner).fill(0);
    let base = 0;
    for (let a = 0; a <= inner; a++) base += b0[a]! * strides[a]!;
    for (let o = 0; o < total; o += run) {
      let off = base;
      for (let a = 0; a < inner; a++) off += idx[a]! * strides[a]!;
      dst.set(src.subarray(off, off + run), o);
      for (let a = inner - 1; a >= 0; a--) { // odometer over the outer axes
        if (++idx[a]! < s0[a]!) break;
        idx[a] = 0;
      }
    }
    return out.info;
  });
}

/**
 * Depthwise filter gradient as one pass over dy: for every output pixel and tap, multiply the
 * input channel vector by the dy channel vector and accumulate (float64) into dW[tap, c, j].
 */
const depthwiseBackpropFilterKernel = heapKernel('DepthwiseConv2dNativeBackpropFilter', (backend, inputs, attrs) => {
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const a = attrs as { strides: number | number[]; pad: PadSpec; dilations?: number | number[]; dimRoundingMode?: RoundingMode; filterShape: number[] };
  const g = convGeometry(x.shape, a.filterShape, a.strides, a.dilations, a.pad, a.dimRoundingMode, true);
  const [nb, h, w, c] = x.shape as [number, number, number, number];
  const [kh, kw, , m] = a.filterShape as [number, number, number, number];
  const [sh, sw] = g.strides, [dh, dw] = g.dilations, [oh, ow] = g.out;
  const acc = new Float64Array(kh * kw * c * m);
  const out = output(backend, a.filterShape);
  const xs = backend.typedArrayFromHeap(x) as Float32Array;
  const gs = backend.typedArrayFromHeap(dy) as Float32Array;
  const cm = c * m;
  for (let b = 0; b < nb; b++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        const gBase = ((b * oh + i) * ow + j) * cm;
        for (let p = 0; p < kh; p++) {
          const y = i * sh + p * dh - g.pads.top;
          if (y < 0 || y >= h) continue;
          for (let q = 0; q < kw; q++) {
            const xx = j * sw + q * dw - g.pads.left;
            if (xx < 0 || xx >= w) continue;
            const xBase = ((b * h + y) * w + xx) * c;
            const aBase = (p * kw + q) * cm;
            if (m === 1) {
              for (let ch = 0; ch < c; ch++) acc[aBase + ch] = acc[aBase + ch]! + xs[xBase + ch]! * gs[gBase + ch]!;
            } else {
              for (let ch = 0; ch < c; ch++) {
                const xv = xs[xBase + ch]!;
                for (let k = 0; k < m; k++) acc[aBase + ch * m + k] = acc[aBase + ch * m + k]! + xv * gs[gBase + ch * m + k]!;
              }
            }
          }
        }
      }
    }
  }
  out.view().set(acc);
  return out.info;
});

function shareBuffer(backend: unknown, x: tf.TensorInfo): tf.TensorInfo {
  (backend as { incRef(dataId: object): void }).incRef(x.dataId as object);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

export function makeIdentityKernel(original: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: 'Identity',
    backendName: WASM,
    kernelFunc: (args) => (args.inputs.x!.dtype === 'string' ? original.kernelFunc(args) : shareBuffer(args.backend, args.inputs.x!)),
  };
}

export function makeCastKernel(original: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: 'Cast',
    backendName: WASM,
    kernelFunc: (args) => {
      const x = args.inputs.x!;
      if ((args.attrs as { dtype: tf.DataType }).dtype !== x.dtype || x.dtype === 'string') return original.kernelFunc(args);
      return shareBuffer(args.backend, x);
    },
  };
}

export const heapKernels: readonly tf.KernelConfig[] = [
  depthwiseBackpropFilterKernel,
  maxPoolGradKernel, avgPoolGradKernel, unsortedSegmentSumKernel, tileKernel,
];
