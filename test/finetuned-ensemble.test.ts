/**
 * `ghn ensemble --finetune-steps` (api/ensemble.ts evaluateEnsemble): member i is fine-tuned with
 * the batch order of seed i, so two copies of one file become two different members; the head
 * refit applies to every member.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DatasetSplits, evaluateEnsemble } from '../src/api/ensemble.js';
import { resolveDataset } from '../src/data/sources.js';

const FILE = 'fixtures/mlp.eval13.onnx';

test('fine-tuned members of one file differ by their batch order; as written they are one model', async () => {
  const splits = new DatasetSplits(resolveDataset('fashion-mnist', 'fixtures/fashion-mnist'), 300);
  const members = [{ name: 'a', model: FILE }, { name: 'b', model: FILE }];
  const written = await evaluateEnsemble(members, { splits });
  assert.equal(written.disagreement, 0);
  const tuned = await evaluateEnsemble(members, { splits, finetuneSteps: 5 });
  assert.ok(tuned.disagreement > 0, `disagreement ${tuned.disagreement}`);
  assert.notEqual(tuned.members[0], tuned.members[1]);
  const refitted = await evaluateEnsemble(members, { splits, finetuneSteps: 5, headRefit: { images: 500 } });
  // 5 steps from PyTorch's init: the least-squares head reads the features far better than the trained one.
  assert.ok(refitted.meanMember > tuned.meanMember + 0.05, `refit ${refitted.meanMember} vs ${tuned.meanMember}`);
});

test('distill with headRefit: the student head is refitted on the labels after training, and the report says so', async () => {
  const { distill } = await import('../src/api/ensemble.js');
  const splits = new DatasetSplits(resolveDataset('fashion-mnist', 'fixtures/fashion-mnist'), 300);
  const teachers = [{ name: 'a', model: FILE }, { name: 'b', model: 'fixtures/cnn_small.eval13.onnx' }];
  const student = { name: 's', model: FILE };
  const plain = (await distill(teachers, student, { splits, steps: 4 })).report;
  const refit = (await distill(teachers, student, { splits, steps: 4, headRefit: { images: 500 } })).report;
  assert.equal(plain.headRefit, undefined);
  assert.equal(refit.headRefit?.images, 500);
  assert.equal(refit.ensemble, plain.ensemble);
  // Untrained teachers give the body nothing to learn; the least-squares head still reads its features.
  assert.ok(refit.student > plain.student + 0.05, `refit ${refit.student} vs ${plain.student}`);
});

test("distill with optimizer and lr 'auto': LAMB 3e-3 for a predicted student, AdamW 1e-3 for PyTorch's export", async () => {
  const { distill } = await import('../src/api/ensemble.js');
  const { predict } = await import('../src/api/predict.js');
  const splits = new DatasetSplits(resolveDataset('fashion-mnist', 'fixtures/fashion-mnist'), 100);
  const predicted = { name: 'p', model: (await predict(FILE)).onnx };
  const auto = { splits, steps: 1, optimizer: 'auto' as const, lr: 'auto' as const };
  const fromPrediction = (await distill([predicted], predicted, auto)).report;
  assert.deepEqual([fromPrediction.optimizer, fromPrediction.lr], ['lamb', 3e-3]);
  const raw = { name: 'r', model: FILE };
  const fromExport = (await distill([raw], raw, auto)).report;
  assert.deepEqual([fromExport.optimizer, fromExport.lr], ['adamw', 1e-3]);
});
