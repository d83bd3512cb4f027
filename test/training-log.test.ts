import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { loadFashionMnist } from '../src/data/fashion-mnist.js';
import { initBackend } from '../src/engine/backend.js';
import { plotTrainingLog, type LogRecord } from '../src/meta-training/plot-log.js';
import { trainGhn } from '../src/meta-training/train.js';
import {
  compressLegacyLog, decodeLog, gzipMember, readTrainingLog, readTrainingLogText, resolveTrainingLog, TrainingLog,
} from '../src/meta-training/training-log.js';

const dir = () => mkdtempSync(join(tmpdir(), 'ghn-log-'));
const record = (step: number, extra: Partial<LogRecord> = {}): LogRecord =>
  ({ step, loss: 2.5 - step * 0.1, acc: 0.1 + step * 0.02, lr: 1e-4 * step, elapsedSec: step * 0.5, ...extra });

function writeLog(path: string, steps: number[], flushEvery: number): void {
  const log = TrainingLog.open(path, { keepThroughStep: 0, flushEvery });
  for (const s of steps) log.append(record(s));
  log.close();
}

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('training log', () => {
  it('is gzip members of whole lines that any gunzip reads, and reads back the records written', () => {
    const path = join(dir(), 'r.log.jsonl.gz');
    writeLog(path, range(1, 10), 3);
    const buf = readFileSync(path);
    assert.equal(decodeLog(buf).members.length, 4, '3 + 3 + 3 + 1 records');
    assert.deepEqual(readTrainingLog(path), range(1, 10).map((s) => record(s)));
    assert.equal(gunzipSync(buf).toString('utf8'), readTrainingLogText(path), 'concatenated members are plain gzip');
    assert.equal(readTrainingLogText(path), range(1, 10).map((s) => JSON.stringify(record(s)) + '\n').join(''));
  });

  it('an append cut short loses only its own member, and the next run repairs the file before appending', () => {
    const path = join(dir(), 'cut.log.jsonl.gz');
    writeLog(path, range(1, 6), 3);
    const whole = statSync(path).size;
    const next = gzipMember(range(7, 9).map((s) => JSON.stringify(record(s)) + '\n').join(''));
    appendFileSync(path, next.subarray(0, next.length - 5)); // interrupted mid-member
    assert.throws(() => gunzipSync(readFileSync(path)), 'a plain gunzip fails on the cut member');
    assert.deepEqual(readTrainingLog<LogRecord>(path).map((r) => r.step), range(1, 6));
    assert.equal(decodeLog(readFileSync(path)).droppedBytes, next.length - 5);

    const log = TrainingLog.open(path, { keepThroughStep: 6, flushEvery: 2 });
    assert.equal(statSync(path).size, whole, 'the remains of the cut member are gone');
    for (const s of range(7, 9)) log.append(record(s));
    log.close();
    assert.deepEqual(readTrainingLog<LogRecord>(path).map((r) => r.step), range(1, 9));
    assert.doesNotThrow(() => gunzipSync(readFileSync(path)));
  });

  it('a cut short member in the middle of the file also leaves the members before it readable', () => {
    const path = join(dir(), 'mid.log.jsonl.gz');
    writeLog(path, range(1, 4), 2);
    const m = gzipMember(JSON.stringify(record(5)) + '\n');
    appendFileSync(path, m.subarray(0, 20));
    appendFileSync(path, gzipMember(JSON.stringify(record(6)) + '\n'));
    assert.deepEqual(readTrainingLog<LogRecord>(path).map((r) => r.step), range(1, 4));
  });

  it('a run keeps the records up to the step it starts from and drops later ones', () => {
    const path = join(dir(), 'k.log.jsonl.gz');
    writeLog(path, range(1, 10), 4);
    TrainingLog.open(path, { keepThroughStep: 6 }).close();
    assert.deepEqual(readTrainingLog<LogRecord>(path).map((r) => r.step), range(1, 6));
    TrainingLog.open(path, { keepThroughStep: 0 }).close();
    assert.deepEqual(readTrainingLog(path), []);
  });

  it('reads a legacy plain log, and converts it losslessly on the first append', () => {
    const d = dir();
    const plain = join(d, 'old.log.jsonl');
    const text = range(1, 5).map((s) => JSON.stringify(record(s)) + '\n').join('');
    writeFileSync(plain, text + '{"step":6,"lo'); // the old writer, interrupted mid-line
    assert.equal(resolveTrainingLog(`${plain}.gz`), plain);
    assert.deepEqual(readTrainingLog<LogRecord>(`${plain}.gz`).map((r) => r.step), range(1, 5));
    const log = TrainingLog.open(`${plain}.gz`, { keepThroughStep: 5 });
    assert.ok(!existsSync(plain) && existsSync(`${plain}.gz`), 'the plain file is replaced by the compressed one');
    assert.equal(gunzipSync(readFileSync(`${plain}.gz`)).toString('utf8'), text);
    log.append(record(6));
    log.close();
    assert.deepEqual(readTrainingLog<LogRecord>(`${plain}.gz`).map((r) => r.step), range(1, 6));

    const exact = join(d, 'exact.log.jsonl');
    writeFileSync(exact, text);
    const sizes = compressLegacyLog(exact);
    assert.equal(sizes.plainBytes, Buffer.byteLength(text));
    assert.equal(readTrainingLogText(`${exact}.gz`), text);
  });

  it('a log written whole (conversion, repair) never leaves a temp file behind', () => {
    const d = dir();
    const path = join(d, 't.log.jsonl.gz');
    writeLog(path, range(1, 8), 3);
    truncateSync(path, statSync(path).size - 3);
    TrainingLog.open(path, { keepThroughStep: 8 }).close();
    assert.ok(!existsSync(`${path}.tmp`));
    assert.deepEqual(readTrainingLog<LogRecord>(path).map((r) => r.step), range(1, 6));
  });
});

describe('meta-training writes the compressed log', () => {
  before(async () => { await initBackend(); });

  it('an interrupted run resumed from its checkpoint logs every step once', async () => {
    const data = loadFashionMnist({ dir: 'fixtures/fashion-mnist', split: 'train', limit: 256 });
    const recipe = { steps: 3, metaBatch: 2, images: 8, poolSize: 2, warmupSteps: 1, lr: 1e-3 };
    const d = dir();
    const run = { recipe, data, valEvery: 0, checkpointPath: join(d, 'c.ghn'), logPath: join(d, 'c.log.jsonl.gz') };
    const first = await trainGhn({ ...run, checkpointEvery: 1, maxMinutes: 0 });
    assert.equal(first.stepsDone, 1);
    // Steps logged after the checkpoint (a run killed before its next one) are trained again on resume.
    appendFileSync(run.logPath, gzipMember(JSON.stringify({ ...first.history[0], step: 2 }) + '\n'));
    const resumed = await trainGhn({ ...run, resume: true });
    const logged = readTrainingLog<LogRecord>(run.logPath);
    assert.deepEqual(logged.map((r) => r.step), [1, 2, 3]);
    assert.deepEqual(logged.map((r) => r.loss), [...first.history, ...resumed.history].map((p) => p.loss));
    [first, resumed].forEach((r) => r.model.dispose());
  });
});

/** Well-formed XML, as far as an SVG writer can get it wrong: every tag closed, in order; attributes quoted. */
function assertWellFormed(xml: string): void {
  const stack: string[] = [];
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (let m = tag.exec(xml); m; m = tag.exec(xml)) {
    assert.ok(!xml.slice(last, m.index).includes('<'), `unparsed markup near ${xml.slice(last, last + 40)}`);
    last = tag.lastIndex;
    const [, close, name, , selfClose] = m;
    if (close) assert.equal(stack.pop(), name, `</${name}> closes the open tag`);
    else if (!selfClose) stack.push(name!);
  }
  assert.ok(!xml.slice(last).includes('<'));
  assert.deepEqual(stack, [], 'every tag closed');
}

const points = (svg: string, series: string): Array<[number, number]> => {
  const m = new RegExp(`<polyline data-series="${series}"[^>]* points="([^"]*)"`).exec(svg);
  assert.ok(m, `series ${series}`);
  return m[1]!.trim().split(' ').map((p) => p.split(',').map(Number) as [number, number]);
};

describe('plot of a training log', () => {
  // Two processes (the second, from step 5, trained steps 5–6 again: they are logged twice),
  // validation at steps 4 and 10, learning rate rising throughout.
  const log: LogRecord[] = [
    ...range(1, 6).map((s) => record(s, { val: s === 4 ? { acc: 0.3, loss: 2.1 } : undefined })),
    ...range(5, 12).map((s) => record(s, { loss: 3 - s * 0.2, elapsedSec: (s - 4) * 0.25, val: s === 10 ? { acc: 0.5, loss: 1.5 } : undefined })),
  ];

  it('is a well-formed self-contained SVG with the loss, accuracy, learning-rate and throughput series', () => {
    const svg = plotTrainingLog(log, { smooth: 3 });
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assertWellFormed(svg);
    assert.doesNotMatch(svg, /<script|href=|@import|url\((?!#)/, 'nothing fetched or run');
    for (const s of ['loss', 'loss-smoothed', 'acc', 'acc-smoothed', 'lr', 'steps-per-min']) assert.ok(points(svg, s).length > 0, s);
    assert.equal(points(svg, 'lr').length, 12, 'one point per step: the repeated steps drawn once');
    const lrY = points(svg, 'lr').map(([, y]) => y);
    assert.ok(lrY.every((y, i) => i === 0 || y < lrY[i - 1]!), 'a rising learning rate goes up the panel');
    const lossX = points(svg, 'loss').map(([x]) => x);
    assert.ok(lossX.every((x, i) => i === 0 || x > lossX[i - 1]!), 'steps in order');
    for (const s of ['val-loss', 'val-acc']) {
      const group = new RegExp(`<g data-series="${s}"[^>]*>([\\s\\S]*?)</g>`).exec(svg);
      assert.equal(group?.[1]!.match(/<circle/g)?.length, 2, `${s}: both validation points`);
    }
    assert.equal(svg.match(/data-series="process-start"/g)?.length, 4, 'the second process marked in each of the 4 panels');
  });

  it('throughput follows the logged step times: the second process ran twice as fast', () => {
    const svg = plotTrainingLog(log, { smooth: 3 });
    const frame = /<g data-panel="rate">[\s\S]*?<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)"/.exec(svg);
    assert.ok(frame);
    const zero = Number(frame[1]) + Number(frame[2]); // the rate panel starts at 0
    const rate = points(svg, 'steps-per-min').map(([, y]) => zero - y);
    // Bins of 3 steps. 1–3: 0.5 s per step (step 1 has no time before it); 4–6: step 4 at 0.5 s,
    // step 5 starts the second process (no time), step 6 at 0.25 s; 7–9 and 10–12: 0.25 s.
    assert.equal(rate.length, 4);
    assert.ok(Math.abs(rate[2]! - rate[3]!) < 0.2, 'equal rates, equal heights');
    assert.ok(Math.abs(rate[0]! / rate[2]! - 0.5) < 0.01, `120 vs 240 steps/min: ${rate}`);
    assert.ok(Math.abs(rate[1]! / rate[2]! - 160 / 240) < 0.01, 'median of 0.5 and 0.25 s');
  });

  it('a long log is drawn from per-bin summaries, so the file stays small', () => {
    const long = range(1, 20000).map((s) => record(s, { loss: 2 + Math.sin(s), lr: 1e-3 }));
    const svg = plotTrainingLog(long, { maxBins: 200 });
    assertWellFormed(svg);
    assert.ok(points(svg, 'loss').length <= 400);
    assert.ok(Buffer.byteLength(svg) < 60_000, `${Buffer.byteLength(svg)} bytes`);
  });
});
