/**
 * Progress of long commands (issue 20, item 5): plain lines when stderr is not a terminal (every 10%
 * and at least every 30 s, with time spent and left), a redrawn bar with ETA on a terminal — the
 * latter checked on the real CLI (`ghn finetune`) under a pseudo-terminal made by util-linux script.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { formatDuration, progressBar } from '../src/cli/progress.js';

describe('progress', () => {
  it('formats durations as a person reads them', () => {
    assert.deepEqual([0, 42.4, 185, 7620].map(formatDuration), ['0s', '42s', '3m05s', '2h07m']);
  });

  it('without a terminal: a line per 10% and at least every 30 s, with elapsed time and ETA', () => {
    let t = 0;
    const lines: string[] = [];
    const bar = progressBar(1000, 'train', '', { tty: false, now: () => t, write: (l) => lines.push(l) });
    for (let step = 1; step <= 1000; step++) {
      t += step <= 10 ? 10_000 : 100; // the first 10 steps are slow: 100 s for 1% of the work
      bar.update(step, { loss: '1.000', val: '' });
    }
    bar.stop();
    // Step 1 (the first), steps 4, 7, 10 (30 s apart while slow), then every 100 steps, and the last.
    assert.deepEqual(lines.map((l) => Number(/^train (\d+)\/1000 /.exec(l)![1])), [1, 4, 7, 10, 110, 210, 310, 410, 510, 610, 710, 810, 910, 1000]);
    assert.match(lines[0]!, /^train 1\/1000 \(0%, 10s elapsed, ETA 2h46m\) loss 1\.000\n$/);
    assert.match(lines.at(-1)!, /^train 1000\/1000 \(100%, 3m19s elapsed, ETA 0s\) loss 1\.000\n$/);
  });

  it('a resumed run\'s ETA counts only the steps done since it started', () => {
    let t = 0;
    const lines: string[] = [];
    const bar = progressBar(56_000, 'train', '', { tty: false, now: () => t, write: (l) => lines.push(l) });
    for (let step = 53_001; step <= 53_100; step++) {
      t += 1_000; // one step a second: the line at step 53,091 has 2,909 left
      bar.update(step, { loss: '1.000' });
    }
    assert.match(lines.at(-1)!, /^train 53091\/56000 \(94%, 1m31s elapsed, ETA 48m29s\) loss 1\.000\n$/);
  });

  it('on a terminal: ghn finetune redraws one bar with its ETA', { timeout: 180_000 }, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-progress-'));
    try {
      const cmd = [process.execPath, '--import', 'tsx', path.resolve('src/cli/main.ts'), 'finetune', 'fixtures/cnn_small.preserve13.onnx',
        '--data', 'fixtures/fashion-mnist', '--steps', '40', '--test-limit', '100', '-o', path.join(dir, 'tuned.onnx')]
        .map((a) => `'${a}'`).join(' ');
      // script gives the command a terminal on stdin/stdout/stderr and copies what it prints to our stdout.
      const r = spawnSync('script', ['-qefc', cmd, '/dev/null'], { encoding: 'utf8', timeout: 170_000 });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /finetune \[[█░]+\] \d+\/40 ETA \d+s/, r.stdout);
      assert.match(r.stdout, /\r/, 'the bar is redrawn in place');
      assert.doesNotMatch(r.stdout, /finetune \d+\/40 \(/, 'no plain progress lines on a terminal');
      assert.doesNotMatch(r.stdout, /\{loss\}/, 'a field placeholder printed before the first step');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
