/**
 * The shipped path can never silently fall to chance again: `predict()` with default options and the
 * shipped GHN, on PyTorch exports of architectures outside the generated space, run as written in
 * onnxruntime (BatchNorm on the written running statistics) on Fashion-MNIST test images; and the
 * GHN's own prediction (its classifier kept, `fitHead: false`) must classify too, so that the
 * classifier fit cannot hide a GHN fallen to chance.
 * (Measured at the time of writing, 1,000 images, default / GHN's classifier: resnet_small 78.7 / 73.3%,
 * mobilenet_small 73.1 / 69.0%, densenet_small 74.8 / 66.0%, mlp 73.6 / 70.0%, convnext_small
 * 71.6 / 69.0%; chance is 10%.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { predict } from '../src/api/predict.js';
import { loadFashionMnist } from '../src/data/index.js';
import { decodeModel } from '../src/onnx/index.js';
import { evaluateWithExecutor, evaluateWithOrt } from '../src/fine-tuning/evaluate.js';

const test = loadFashionMnist({ split: 'test', limit: 1000 });
const MODELS = ['resnet_small', 'mobilenet_small', 'densenet_small', 'mlp', 'convnext_small'];

describe('default ghn predict output classifies (shipped GHN, onnxruntime as written)', () => {
  for (const model of MODELS) {
    it(`${model}.preserve13: ≥ 65% test accuracy with no training, ≥ 50% with the GHN's own classifier`, async () => {
      const { onnx, report } = await predict(`fixtures/${model}.preserve13.onnx`);
      assert.equal(report.calibration?.data, 'fashion-mnist/train', 'calibrated on the GHN\'s training images');
      assert.equal(report.head?.kept, 'fitted');
      const { accuracy } = await evaluateWithOrt(onnx, test);
      assert.ok(accuracy >= 0.65, `${model}: ${(100 * accuracy).toFixed(1)}% in onnxruntime`);
      const ghnOnly = (await evaluateWithOrt((await predict(`fixtures/${model}.preserve13.onnx`, { fitHead: false })).onnx, test)).accuracy;
      assert.ok(ghnOnly >= 0.5, `${model}: the GHN's classifier ${(100 * ghnOnly).toFixed(1)}% in onnxruntime`);
    });
  }

  it('inference-mode BatchNorm is within 2 points of batch statistics (resnet_small, mobilenet_small)', async () => {
    for (const model of ['resnet_small', 'mobilenet_small']) {
      const { onnx } = await predict(`fixtures/${model}.preserve13.onnx`);
      const inference = (await evaluateWithOrt(onnx, test)).accuracy;
      // BatchNorm on the batch's statistics, 250 images at a time (as the GHN literature evaluates).
      const batch = (await evaluateWithExecutor(decodeModel(onnx), test, { batchNorm: 'batch', batch: 250 })).accuracy;
      assert.ok(Math.abs(inference - batch) <= 0.02, `${model}: ${(100 * inference).toFixed(1)}% as written vs ${(100 * batch).toFixed(1)}% batch statistics`);
    }
  });
});
