/**
 * Prediction API: a GHN and a ComputationGraph → every parameter slot's value, either as plain
 * arrays in the slot's stored shape/layout (for writing ONNX), or as differentiable tensors keyed
 * by initializer name (for the executor during meta-training).
 */
import * as tf from '../engine/tfjs-core.js';
import { GhnError } from '../errors.js';
import type { ComputationGraph } from '../graph/computation-graph.js';
import { lowRankProduct } from '../postprocess/ort-linalg.js';
import { decodeSlots, decodeSlotsPerSlot, predictionFactors } from './decoder.js';
import { encodeGraph, type GraphEncoding, type SlotSpec } from './encoding.js';
import { withLatent, type LatentDraw } from './latent.js';
import type { GhnModel } from './model.js';

/** Canonical → stored: transpose 2-D weights stored as [in, out], then reshape to the stored shape. */
export function toStored(slot: SlotSpec, canonical: tf.Tensor): tf.Tensor {
  const laidOut = slot.layout === 'transposed' ? tf.transpose(canonical) : canonical;
  return tf.reshape(laidOut, slot.storedShape as number[]);
}

/** Canonical-shape tensors per slot id. Differentiable; call inside tidy / variableGrads. */
export function predictSlotTensors(ghn: GhnModel, enc: GraphEncoding): Map<string, tf.Tensor> {
  const nodes = ghn.embedNodes(enc);
  return decodeSlots(ghn, enc, nodes);
}

/** Stored-shape, stored-layout tensors per slot id. Differentiable; call inside tidy / variableGrads. */
export function predictStoredTensors(ghn: GhnModel, enc: GraphEncoding, latent?: LatentDraw): Map<string, tf.Tensor> {
  return decodeSlots(ghn, enc, withLatent(ghn, ghn.embedNodes(enc), latent), { stored: true });
}

/**
 * Stored-shape tensors keyed by initializer name, ready for `GraphExecutor.run({ params })`.
 * Differentiable. Models whose initializers fill several slots are rejected: one tensor cannot
 * carry two predictions.
 */
export function predictInitializerTensors(ghn: GhnModel, enc: GraphEncoding, latent?: LatentDraw): Map<string, tf.Tensor> {
  const initializers = new Set<string>();
  for (const slot of enc.slots) {
    if (initializers.has(slot.initializer)) {
      throw new GhnError('unsupported', `initializer ${slot.initializer} is shared by several slots; differentiable prediction needs one slot per initializer`);
    }
    initializers.add(slot.initializer);
  }
  const bySlot = predictStoredTensors(ghn, enc, latent);
  return new Map(enc.slots.map((slot) => [slot.initializer, bySlot.get(slot.id)!]));
}

/** Every slot's predicted value in its stored shape and layout, keyed by slot id. */
export function predictParameters(ghn: GhnModel, graph: ComputationGraph | GraphEncoding): Map<string, Float32Array> {
  const enc = 'numOps' in graph ? graph : encodeGraph(graph);
  // Forward only: the per-slot products (no tape to feed, fewer FLOPs than the batched tables).
  const tensors = tf.tidy(() => {
    const bySlot = decodeSlotsPerSlot(ghn, enc, ghn.embedNodes(enc), { stored: true });
    return enc.slots.map((slot) => bySlot.get(slot.id)!);
  });
  const out = new Map<string, Float32Array>();
  enc.slots.forEach((slot, k) => {
    out.set(slot.id, tensors[k]!.dataSync() as Float32Array);
    tensors[k]!.dispose();
  });
  return out;
}

/**
 * The graph transformer's node embeddings, kept for several latent samples of one graph (each then
 * costs only the decoder pass: predictParametersAsync with `nodes`). The caller disposes `nodes`.
 */
export function encodeNodes(ghn: GhnModel, graph: ComputationGraph): { enc: GraphEncoding; nodes: tf.Tensor2D } {
  const enc = encodeGraph(graph);
  return { enc, nodes: ghn.embedNodes(enc) };
}

/**
 * predictParameters for a forward-only caller that can wait: tfjs computes the vector slots and
 * every weight's low-rank factors in batches (predictionFactors: tens of ops per distinct weight
 * shape, not per weight); the final A·Bᵀ + shift (nearly all the FLOPs and all the output bytes: 25M values
 * for ResNet-50) runs in onnxruntime's float32 GEMM, so the values never pass through the wasm
 * heap. Equal to predictParameters up to float rounding.
 */
export async function predictParametersAsync(
  ghn: GhnModel, graph: ComputationGraph | GraphEncoding, latent?: LatentDraw, nodes?: tf.Tensor2D,
): Promise<Map<string, Float32Array>> {
  const enc = 'numOps' in graph ? graph : encodeGraph(graph);
  const products: { slot: SlotSpec; a: Float32Array; b: Float32Array; k: number; shift: number }[] = [];
  const values = new Map<string, Float32Array>();
  // Filled inside the tidy but not returned from it: tidy would walk every element of the arrays.
  tf.tidy(() => {
    const f = predictionFactors(ghn, enc, withLatent(ghn, nodes ?? ghn.embedNodes(enc), latent));
    if (f.vectors) {
      const all = f.vectors.values.dataSync() as Float32Array;
      let offset = 0;
      f.vectors.slots.forEach((s, j) => {
        values.set(enc.slots[s]!.id, all.slice(offset, offset + f.vectors!.sizes[j]!));
        offset += f.vectors!.sizes[j]!;
      });
    }
    for (const [id, value] of f.values) values.set(id, value.dataSync() as Float32Array);
    for (const group of f.groups) {
      const [, rows, r] = group.a.shape;
      const cols = group.b.shape[1];
      const a = group.a.dataSync() as Float32Array, b = group.b.dataSync() as Float32Array;
      const shift = group.shift.dataSync() as Float32Array;
      group.slots.forEach((s, g) => products.push({
        slot: enc.slots[s]!, a: a.subarray(g * rows * r, (g + 1) * rows * r), b: b.subarray(g * cols * r, (g + 1) * cols * r), k: r, shift: shift[g]!,
      }));
    }
  });
  for (const { slot, a, b, k, shift } of products) {
    const rows = a.length / k, cols = b.length / k;
    // Stored transposed ([in, out]): B·Aᵀ, the transpose of the canonical A·Bᵀ.
    values.set(slot.id, slot.layout === 'transposed' ? await lowRankProduct(b, cols, a, rows, k, shift) : await lowRankProduct(a, rows, b, cols, k, shift));
  }
  return new Map(enc.slots.map((slot) => [slot.id, values.get(slot.id)!]));
}
