import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildGraph, summarize } from '../src/graph/index.js';
import { FAMILY_NAMES, sampleArchitecture } from '../src/space/sample.js';

// The GHN trains on the generated space and predicts for real exports: the importer must read both alike.
describe('graph import of the generated architecture space', () => {
  for (const family of FAMILY_NAMES) {
    it(`${family}: every sample imports with nothing unsupported and the generator's parameter count`, () => {
      for (let seed = 0; seed < 6; seed++) {
        const arch = sampleArchitecture(seed, { family });
        const summary = summarize(buildGraph({ proto: arch.model }));
        assert.deepEqual(summary.unsupported, [], `${family} seed ${seed}`);
        assert.equal(summary.params.elements, arch.params, `${family} seed ${seed}`);
      }
    });
  }
});
