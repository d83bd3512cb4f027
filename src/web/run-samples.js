// Runs a predicted model in the browser with onnxruntime-web (wasm, served by this server) on
// Fashion-MNIST test images, and draws each image with its predicted label.
import * as ort from '/vendor/ort/ort.wasm.min.mjs';

ort.env.wasm.wasmPaths = '/vendor/ort/';
// Threads need cross-origin isolation (SharedArrayBuffer); one thread is plenty for 64 small images.
ort.env.wasm.numThreads = 1;

/** Normalized float32 input for images [from, to): (pixel·scale − mean) / std, one channel. */
function normalize(pixels, from, to, normalization) {
  const plane = 28 * 28;
  const out = new Float32Array((to - from) * plane);
  const a = normalization.scale / normalization.std[0];
  const b = -normalization.mean[0] / normalization.std[0];
  for (let i = 0; i < out.length; i++) out[i] = pixels[from * plane + i] * a + b;
  return out;
}

function argmax(values, offset, n) {
  let best = 0;
  for (let k = 1; k < n; k++) if (values[offset + k] > values[offset + best]) best = k;
  return best;
}

/**
 * Checks the model takes [batch, 1, 28, 28] images and gives 10 scores; returns the batch size to
 * feed (the whole set when the batch dimension is symbolic, else the fixed size).
 */
export function batchSize(signature, count) {
  const input = signature.inputs[0];
  const output = signature.outputs[0];
  if (!input || input.shape.length !== 4 || input.shape.slice(1).join('x') !== '1x28x28') {
    throw new Error(`this model takes ${input ? `[${input.shape.join(', ')}]` : 'no input'}, not 1×28×28 Fashion-MNIST images`);
  }
  if (!output || output.shape[output.shape.length - 1] !== 10) {
    throw new Error(`this model outputs [${output?.shape.join(', ') ?? ''}], not 10 class scores`);
  }
  return typeof input.shape[0] === 'number' ? input.shape[0] : count;
}

/** Runs every sample through the model; returns the predicted class per image. */
export async function classify(modelBytes, signature, samples, normalization) {
  const session = await ort.InferenceSession.create(modelBytes, { executionProviders: ['wasm'] });
  try {
    const batch = batchSize(signature, samples.count);
    const predictions = new Int32Array(samples.count);
    for (let from = 0; from < samples.count; from += batch) {
      // A fixed batch size that does not divide the count gets a zero-padded last batch.
      const n = Math.min(batch, samples.count - from);
      const data = new Float32Array(batch * 28 * 28);
      data.set(normalize(samples.pixels, from, from + n, normalization));
      const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [batch, 1, 28, 28]) };
      const results = await session.run(feeds);
      const logits = results[session.outputNames[0]].data;
      for (let i = 0; i < n; i++) predictions[from + i] = argmax(logits, i * 10, 10);
    }
    return predictions;
  } finally {
    await session.release();
  }
}

/** One canvas per image with its predicted (and, if wrong, true) label. */
export function drawSamples(grid, samples, predictions) {
  const plane = 28 * 28;
  const cells = [];
  for (let i = 0; i < samples.count; i++) {
    const canvas = document.createElement('canvas');
    canvas.width = 28;
    canvas.height = 28;
    const ctx = canvas.getContext('2d');
    const image = ctx.createImageData(28, 28);
    for (let p = 0; p < plane; p++) {
      const v = samples.pixels[i * plane + p];
      image.data.set([v, v, v, 255], p * 4);
    }
    ctx.putImageData(image, 0, 0);
    const correct = predictions[i] === samples.labels[i];
    const cell = document.createElement('figure');
    cell.className = `sample ${correct ? 'correct' : 'wrong'}`;
    const caption = document.createElement('figcaption');
    caption.textContent = samples.classes[predictions[i]];
    caption.title = correct ? 'correct' : `true: ${samples.classes[samples.labels[i]]}`;
    cell.append(canvas, caption);
    cells.push(cell);
  }
  grid.replaceChildren(...cells);
}
