// The page's flow: choose a model → inspect it (table and graph) → predict → download → run the
// predicted model on test images in this browser and show the accuracy.
import { fetchBytes, fetchSamples, inspectModel, listModels, predictModel } from './api.js';
import { drawGraph } from './graph-view.js';
import { classify, drawSamples } from './run-samples.js';

const SAMPLE_COUNT = 64;
/** Larger graphs are unreadable as a drawing; the tables say it all. */
const MAX_DRAWN_OPS = 150;

const $ = (id) => document.getElementById(id);
const state = { file: null, inspected: null, predicted: null };

function status(id, text, kind = 'info') {
  const p = $(id);
  p.textContent = text;
  p.dataset.kind = kind;
}

function fillTable(table, rows) {
  const body = table.tBodies[0];
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement('tr');
    for (const c of cells) {
      const td = document.createElement('td');
      td.textContent = typeof c === 'number' ? c.toLocaleString() : c;
      tr.append(td);
    }
    return tr;
  }));
}

function showSummary(s) {
  $('model-headline').textContent =
    `${state.file.name}: ${s.producer || 'unknown producer'}, opset ${s.opset ?? '?'}, ${s.onnxNodes} ONNX nodes → ` +
    `${s.params.elements.toLocaleString()} parameters in ${s.params.tensors} tensors; input ` +
    s.signature.inputs.map((i) => `${i.name} [${i.shape.join(', ')}]`).join(', ');
  fillTable($('ops-table'), Object.entries(s.ops).sort((a, b) => b[1] - a[1]));
  fillTable($('params-table'), Object.entries(s.params.byRole).map(([role, r]) => [role, r.tensors, r.elements]));
  const unsupported = $('unsupported');
  unsupported.hidden = !s.unsupported.length;
  unsupported.textContent = s.unsupported.length
    ? `Not recognized (prediction will refuse this model): ${s.unsupported.map((u) => `${u.opType} (${u.node})`).join(', ')}`
    : '';
  const figure = $('graph-figure');
  const drawable = s.graph && s.graph.nodes.length <= MAX_DRAWN_OPS;
  figure.hidden = !drawable;
  if (drawable) {
    drawGraph($('graph-view'), s.graph);
    $('graph-caption').textContent = `${s.graph.nodes.length} operations, ${s.graph.edges.length} connections (hover a box for details)`;
  }
  $('model-summary').hidden = false;
}

async function chooseFile(file) {
  state.file = file;
  state.inspected = null;
  state.predicted = null;
  $('predict-button').disabled = true;
  $('run-button').disabled = true;
  $('predict-result').hidden = true;
  $('model-summary').hidden = true;
  status('predict-status', '');
  status('model-status', `Reading ${file.name} (${(file.size / 1024).toFixed(0)} KiB)…`);
  try {
    state.inspected = await inspectModel(file);
    showSummary(state.inspected);
    status('model-status', '');
    $('predict-button').disabled = state.inspected.unsupported.length > 0;
  } catch (err) {
    status('model-status', err.message, 'error');
  }
}

async function predict(event) {
  event.preventDefault();
  const button = $('predict-button');
  button.disabled = true;
  $('run-button').disabled = true;
  status('predict-status', 'Predicting parameters…');
  try {
    const result = await predictModel(state.file, {
      ghn: $('ghn-select').value, noise: $('noise-input').value, seed: $('seed-input').value, orth: $('orth-input').checked ? 1 : 0,
    });
    state.predicted = { ...result, bytes: await fetchBytes(result.download) };
    const link = $('download-link');
    link.href = URL.createObjectURL(new Blob([state.predicted.bytes], { type: 'application/octet-stream' }));
    link.download = result.filename;
    $('predict-headline').textContent =
      `Predicted ${result.report.parameters.toLocaleString()} parameters in ${result.report.tensors} tensors ` +
      `with ${result.ghn.name} in ${Math.round(result.timeMs.total)} ms (${result.bytes.toLocaleString()} bytes).`;
    $('predict-result').hidden = false;
    status('predict-status', '');
    $('run-button').disabled = false;
  } catch (err) {
    status('predict-status', err.message, 'error');
  } finally {
    button.disabled = false;
  }
}

async function run() {
  const button = $('run-button');
  button.disabled = true;
  const accuracy = $('accuracy');
  accuracy.hidden = true;
  status('run-status', 'Loading onnxruntime-web and the test images…');
  try {
    const samples = await fetchSamples(SAMPLE_COUNT);
    status('run-status', `Running the predicted model on ${samples.count} images…`);
    const t0 = performance.now();
    const normalization = state.predicted.normalization ?? samples.normalization;
    const predictions = await classify(state.predicted.bytes, state.predicted.signature, samples, normalization);
    const ms = performance.now() - t0;
    drawSamples($('samples-grid'), samples, predictions);
    const correct = predictions.reduce((n, p, i) => n + (p === samples.labels[i] ? 1 : 0), 0);
    const percent = (100 * correct) / samples.count;
    accuracy.dataset.accuracy = String(percent);
    accuracy.dataset.predictions = String(predictions.length);
    accuracy.dataset.correct = String(correct);
    accuracy.textContent = `Accuracy ${percent.toFixed(1)}% (${correct} of ${samples.count} correct; chance is 10%)`;
    accuracy.hidden = false;
    status('run-status', `Ran in ${ms.toFixed(0)} ms with onnxruntime-web (wasm).`);
  } catch (err) {
    status('run-status', err.message, 'error');
  } finally {
    button.disabled = false;
  }
}

async function init() {
  $('sample-count').textContent = String(SAMPLE_COUNT);
  const input = $('file-input');
  input.addEventListener('change', () => input.files[0] && chooseFile(input.files[0]));
  const zone = $('drop-zone');
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    if (e.dataTransfer.files[0]) chooseFile(e.dataTransfer.files[0]);
  });
  $('predict-form').addEventListener('submit', predict);
  $('run-button').addEventListener('click', run);
  try {
    const { models } = await listModels();
    $('ghn-select').replaceChildren(...models.map((m) => new Option(`${m.name} (${m.id.slice(0, 8)})`, m.id, m.default, m.default)));
  } catch (err) {
    status('predict-status', `Could not list GHN models: ${err.message}`, 'error');
  }
}

init();
