/**
 * Channel provenance (src/graph/channel-maps.ts) on real PyTorch exports: which producer channel each
 * input column of a layer reads after Concat, and that sequential networks get no codes at all.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { slotChannelCodes } from '../src/graph/channel-maps.js';
import { buildGraph } from '../src/graph/build.js';
import { readModelFile } from '../src/onnx/index.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('channel provenance', () => {
  it('sequential and residual exports keep channels 0..n-1 everywhere (no codes reported)', () => {
    for (const name of ['resnet_small', 'mlp', 'cnn_small', 'mobilenet_small']) {
      const codes = slotChannelCodes(buildGraph(readModelFile(`fixtures/${name}.preserve13.onnx`)));
      assert.equal(codes.size, 0, `${name}: ${[...codes.keys()].join(', ')}`);
    }
  });

  it('a conv after a Concat reads each branch\'s own channels, in branch order (densenet_small)', () => {
    const graph = buildGraph(readModelFile('fixtures/densenet_small.preserve13.onnx'));
    const codes = slotChannelCodes(graph);
    const index = graph.index;
    let checked = 0;
    for (const slot of graph.slots.values()) {
      const cols = codes.get(slot.id)?.cols;
      if (slot.role !== 'conv.weight' || !cols) continue;
      // The conv's input comes from a Concat (possibly through BN/ReLU): its code list is the
      // concatenation of every part's channels, each counted from 0.
      let value = index.activationInputs(slot.consumer.node)[0]!;
      let producer = index.producerOf(value)!;
      while (index.opType(producer) !== 'Concat') {
        value = index.activationInputs(producer)[0]!;
        producer = index.producerOf(value)!;
      }
      const expected: number[] = [];
      for (const part of index.inputs(producer)) {
        const partCodes = [...cols.slice(expected.length)];
        // Each part starts again at its producer's channel 0 (parts are layer outputs here or earlier concats).
        assert.equal(partCodes[0], 0, `${slot.id}: part ${part} starts at channel 0`);
        const next = partCodes.findIndex((c, k) => k > 0 && c === 0);
        expected.push(...range(next < 0 ? partCodes.length : next));
        if (next < 0) break;
      }
      assert.equal(cols.length, slot.shape[1], `${slot.id}: one code per input channel`);
      assert.deepEqual([...cols], expected, `${slot.id}: codes are consecutive runs from 0`);
      assert.ok(Math.max(...cols) < cols.length, `${slot.id}: codes index producer channels`);
      checked++;
    }
    assert.ok(checked >= 2, `convs after a Concat checked: ${checked}`);
  });

  it('BatchNorm after a Concat gets the channels it normalizes (inception/densenet exports)', () => {
    const graph = buildGraph(readModelFile('fixtures/densenet_small.preserve13.onnx'));
    const codes = slotChannelCodes(graph);
    const norms = [...graph.slots.values()].filter((s) => s.role === 'norm.scale' && codes.get(s.id)?.rows);
    for (const slot of norms) assert.equal(codes.get(slot.id)!.rows!.length, slot.elements);
    // densenet_small normalizes concatenated features before each dense layer's conv.
    assert.ok(norms.length >= 1, 'a BatchNorm on concatenated channels');
  });
});
