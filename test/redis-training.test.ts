/**
 * Meta-training over Redis with BullMQ, end to end through the CLI against a real redis-server
 * started here on a free loopback port: `ghn train --redis` with 3 worker processes (a `ghn worker`
 * and a `ghn worker --concurrency 2`) gives the single-process run's GHN byte for byte; so does a run
 * in which one worker is SIGKILLed while it holds a job (BullMQ's stalled-job check hands the job to
 * another) and one joins late; so does a run whose Redis is killed and restarted empty mid-run (the
 * coordinator re-publishes the run), and one whose worker is frozen holding a job and thawed after
 * the run moved on (the job is taken over; the late result changes nothing); the runs go at once. Bad input
 * (unreachable Redis, wrong or missing password, unknown run) ends in one line, non-zero, < 10 s.
 * Before those, without Redis: the blobs are the .ghn layout, and the coordinator's in-order sum
 * is sumInOrder's bit for bit.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import * as tf from '../src/engine/tfjs-core.js';
import { initBackend } from '../src/engine/backend.js';
import { DEFAULT_GHN_CONFIG, GhnModel } from '../src/ghn/model.js';
import { decodeGhn, encodeTensors } from '../src/ghn/serialize.js';
import { sumInOrder } from '../src/meta-training/meta-batch.js';
import { decodeShare, decodeWeights, encodeShare, encodeWeights, QUEUE_PREFIX, runKeys, type Share } from '../src/meta-training/redis-transport.js';
import { OrderedSum, sumShares, type ShareJob } from '../src/meta-training/redis-coordinator.js';

const REDIS_SERVER = '/usr/bin/redis-server';
const CLI = path.resolve('src/cli/main.ts');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-redis-'));
/** Small enough for minutes on two cores; 4 architectures a step so three workers share each step. */
const RECIPE = ['--steps', '20', '--meta-batch', '4', '--images', '8', '--pool', '16', '--eval-archs', '0', '--data', 'fashion-mnist', '--data-dir', 'fixtures/fashion-mnist'];
const PASSWORD = 'test-password';

const skip = fs.existsSync(REDIS_SERVER) ? false : `${REDIS_SERVER} not installed (apt-get install redis-server)`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

const servers: ChildProcess[] = [];
const spawned: ChildProcess[] = [];

/** A redis-server with no persistence (a restart empties it), on `port` or a free one. */
async function startRedis(extra: string[] = [], port?: number): Promise<number> {
  port ??= await freePort();
  const server = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra], { stdio: 'ignore' });
  servers.push(server);
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return port;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server did not start on port ${port}`);
}

interface Proc { child: ChildProcess; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> }

function ghn(...args: string[]): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  spawned.push(child);
  let stdout = '', stderr = '';
  child.stdout!.on('data', (d) => { stdout += d; });
  child.stderr!.on('data', (d) => { stderr += d; });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

/** The GHN's weights, as bytes by variable name (the header's metrics differ between runs). */
function weightBytes(file: string): Map<string, Buffer> {
  const { values } = decodeGhn(new Uint8Array(fs.readFileSync(file)), file);
  return new Map([...values].map(([name, v]) => [name, Buffer.from(v.buffer, v.byteOffset, v.byteLength)]));
}

function assertSameWeights(file: string, reference: string): void {
  const [a, b] = [weightBytes(file), weightBytes(reference)];
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [name, bytes] of a) assert.ok(bytes.equals(b.get(name)!), `${name} differs from the single-process run`);
}

const sharesOf = (stderr: string) => Number(/(\d+) shares computed here/.exec(stderr)?.[1] ?? NaN);

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the coordinator has recorded the run in Redis (workers can join from then on). */
async function runRecorded(client: Redis, run: string): Promise<void> {
  while (!(await client.get(runKeys(run).settings))) await pause(100);
}

/** Waits for a job of step ≥ `minStep` active in `worker`'s hands (the run still going), and returns it. */
async function jobHeldBy(queue: Queue<ShareJob>, worker: Proc, minStep: number, coordinator: Proc): Promise<ShareJob> {
  for (;;) {
    const active = await queue.getJobs(['active']);
    const held = active.find((j) => j.processedBy?.endsWith(`:${worker.child.pid}`) && j.data.step >= minStep);
    if (held) return held.data;
    assert.equal(coordinator.child.exitCode, null, `the run ended before the worker held a job of step ≥ ${minStep}`);
    await pause(20);
  }
}

/**
 * A coordinator running RECIPE as `run` on `redisUrl`, `workers` worker processes joined once the run
 * is recorded, and a client watching its queue; the GHN goes to <tmp>/<run>.ghn.
 */
async function startRun(redisUrl: string, run: string, workers: number, trainArgs: string[] = []) {
  const out = path.join(tmp, run);
  const coordinator = ghn('train', '--out', out, ...RECIPE, '--redis', redisUrl, '--run', run, ...trainArgs);
  // Retries for ever, so the restart test's client outlives the outage too.
  const client = new Redis(redisUrl, { maxRetriesPerRequest: null, retryStrategy: () => 100 });
  await runRecorded(client, run);
  const joined = Array.from({ length: workers }, () => ghn('worker', '--redis', redisUrl, '--run', run));
  const queue = new Queue<ShareJob>(runKeys(run).queue, { connection: client, prefix: QUEUE_PREFIX });
  const close = async () => { await queue.close(); client.disconnect(); };
  return { ghnFile: `${out}.ghn`, coordinator, workers: joined, queue, close };
}

/** Waits until a job of step ≥ `minStep` has been issued (the run still going). */
async function stepIssued(queue: Queue<ShareJob>, minStep: number, coordinator: Proc): Promise<void> {
  while (!(await queue.getJobs(['active', 'waiting', 'completed'])).some((j) => j.data.step >= minStep)) {
    assert.equal(coordinator.child.exitCode, null, `the run ended before step ${minStep}`);
    await pause(20);
  }
}

describe('what crosses Redis: the .ghn layout, summed in drawing order', () => {
  let ghn: GhnModel;
  before(async () => {
    await initBackend();
    ghn = new GhnModel(DEFAULT_GHN_CONFIG);
  });
  after(() => ghn.dispose());

  /** Random gradients over a subset of the GHN's variables, magnitudes 1e-42 (subnormal) to 1e3. */
  const randomShare = (seed: number, keep: (k: number) => boolean): Share => {
    let x = seed;
    const rand = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const grads = new Map([...ghn.variables].filter((_, k) => keep(k)).map(([name, v]) => [name, {
      shape: v.shape, data: Float32Array.from({ length: v.size }, () => (rand() - 0.5) * 10 ** (45 * rand() - 42)),
    }]));
    return { loss: rand(), correct: Math.floor(8 * rand()), seconds: rand(), cpuSeconds: rand(), grads };
  };

  it('shares and weights are byte for byte what serialize.ts writes, and read back', () => {
    const share = randomShare(1, (k) => k % 3 !== 1);
    const metrics = { loss: share.loss, correct: share.correct, seconds: share.seconds, cpuSeconds: share.cpuSeconds };
    assert.ok(encodeShare(ghn.config, share).equals(Buffer.from(encodeTensors(ghn.config, share.grads, { metrics }))));
    // A Buffer at an odd offset inside a larger one, as a client's read buffer may be.
    const bytes = encodeShare(ghn.config, share);
    const shifted = Buffer.concat([Buffer.alloc(3), bytes]).subarray(3);
    const back = decodeShare(shifted, 'test share');
    assert.ok(!('unusable' in back));
    assert.deepEqual({ ...back, grads: undefined }, { ...share, grads: undefined });
    assert.deepEqual([...back.grads.keys()], [...share.grads.keys()]);
    for (const [name, g] of share.grads) {
      assert.deepEqual(back.grads.get(name)!.shape, g.shape);
      assert.ok(Buffer.from(back.grads.get(name)!.data.buffer).equals(Buffer.from(g.data.buffer, g.data.byteOffset, g.data.byteLength)), name);
    }
    const weights = decodeWeights(encodeWeights(ghn), 'test weights');
    assert.deepEqual([...weights.keys()], [...ghn.variables.keys()]);
    for (const [name, v] of ghn.variables) assert.deepEqual(weights.get(name), v.dataSync());
  });

  it('OrderedSum gives sumInOrder\'s float32 sums bit for bit, whatever order the shares arrive in', () => {
    // Variables absent from some shares, one architecture drawn twice.
    const parts = [randomShare(2, () => true), randomShare(3, (k) => k % 2 === 0), randomShare(4, (k) => k % 5 !== 0)];
    const indices = [7, 3, 7, 9];
    const byIndex = new Map([[7, parts[0]!], [3, parts[1]!], [9, parts[2]!]]);
    const toTensors = (s: Share) => ({ loss: s.loss, correct: s.correct, grads: new Map([...s.grads].map(([n, g]) => [n, tf.tensor(g.data, [...g.shape])])) });
    const reference = sumInOrder(indices.map((i) => toTensors(byIndex.get(i)!)));
    const arrived = new Map<number, Share>();
    const sum = new OrderedSum(indices);
    for (const i of [9, 7, 3]) {
      arrived.set(i, byIndex.get(i)!);
      sum.advance(arrived);
    }
    for (const got of [sum.result(), sumShares(indices.map((i) => byIndex.get(i)!))]) {
      assert.equal(got.loss, reference.loss);
      assert.equal(got.correct, reference.correct);
      assert.deepEqual([...got.grads.keys()], [...reference.grads.keys()]);
      for (const [name, g] of reference.grads) {
        const [a, b] = [g.dataSync() as Float32Array, got.grads.get(name)!.dataSync() as Float32Array];
        assert.ok(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)), name);
      }
      tf.dispose([...got.grads.values()]);
    }
    tf.dispose([...reference.grads.values()]);
    assert.throws(() => new OrderedSum([1, 2]).result(), /2 of 2 shares missing/);
  });
});

describe('meta-training over Redis (BullMQ)', { skip }, () => {
  let port = 0;
  let url = '';
  /** The single-process run of RECIPE, started first and awaited only where it is compared with. */
  let reference: Promise<string>;

  before(async () => {
    port = await startRedis();
    url = `redis://127.0.0.1:${port}`;
    const out = path.join(tmp, 'single');
    reference = ghn('train', '--out', out, ...RECIPE).done.then((r) => {
      assert.equal(r.code, 0, r.stderr);
      return `${out}.ghn`;
    });
    reference.catch(() => {}); // reported where awaited
  });

  after(() => {
    for (const p of [...spawned, ...servers]) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('bad input: one line, non-zero exit, within 10 s', { concurrency: 1 }, () => {
    let guarded = '';
    before(async () => {
      guarded = `127.0.0.1:${await startRedis(['--requirepass', PASSWORD])}`;
    });

    const cases: [string, () => string[], RegExp][] = [
      ['an unreachable Redis (worker)', () => ['worker', '--redis', `redis://127.0.0.1:${closedPort}`, '--run', 'x'], /cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: connect ECONNREFUSED/],
      ['an unreachable Redis (coordinator)', () => ['train', '--out', path.join(tmp, 'never'), '--redis', `redis://127.0.0.1:${closedPort}`], /cannot reach Redis/],
      ['a wrong password', () => ['worker', '--redis', `redis://:wrong@${guarded}`, '--run', 'x'], /refused the password/],
      ['no password for a guarded Redis', () => ['train', '--out', path.join(tmp, 'never'), '--redis', `redis://${guarded}`], /needs a password/],
      ['a run that does not exist', () => ['worker', '--redis', url, '--run', 'no-such-run'], /no run "no-such-run" on Redis/],
      ['a run that does not exist (--concurrency 2: said once, no process started)', () => ['worker', '--redis', url, '--run', 'no-such-run', '--concurrency', '2'], /no run "no-such-run" on Redis/],
    ];
    let closedPort = 0;
    before(async () => { closedPort = await freePort(); });

    for (const [what, args, message] of cases) {
      it(what, async () => {
        const t0 = performance.now();
        const r = await ghn(...args()).done;
        const seconds = (performance.now() - t0) / 1000;
        assert.notEqual(r.code, 0);
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0]!, message);
        assert.ok(!lines[0]!.includes('wrong'), 'the password is not printed');
        assert.ok(seconds < 10, `${seconds.toFixed(1)} s`);
        assert.ok(!fs.existsSync(path.join(tmp, 'never.ghn')), 'nothing written');
      });
    }
  });

  // The runs at once (different run names; the restart on a Redis of its own): less wall time than one after the other.
  describe('20 steps, byte for byte', { concurrency: true }, () => {
    it('1 coordinator + 3 workers give the single-process GHN byte for byte', async () => {
      const out = path.join(tmp, 'three');
      const coordinator = ghn('train', '--out', out, ...RECIPE, '--redis', url, '--run', 'three');
      // Workers join once the coordinator has recorded the run.
      const client = new Redis(url);
      await runRecorded(client, 'three');
      // Three worker processes: one plain, two from one `ghn worker --concurrency 2`.
      const workers = [ghn('worker', '--redis', url, '--run', 'three'), ghn('worker', '--redis', url, '--run', 'three', '--concurrency', '2')];
      const c = await coordinator.done;
      assert.equal(c.code, 0, c.stderr);
      const w = await Promise.all(workers.map((p) => p.done));
      client.disconnect();
      w.forEach((r) => assert.equal(r.code, 0, r.stderr));
      const pooled = [1, 2].map((k) => sharesOf(w[1]!.stderr.split('\n').filter((line) => line.startsWith(`[${k}/2] `)).join('\n')));
      assert.ok([sharesOf(w[0]!.stderr), ...pooled].every((n) => n > 0), `every worker process took part: ${w.map((r) => r.stderr).join('')}`);
      assertSameWeights(`${out}.ghn`, await reference);
    });

    it('the same GHN with a worker SIGKILLed while it holds a job and one joining late', async () => {
      const run = 'faults';
      const { ghnFile, coordinator, workers: [victim, steady], queue, close } = await startRun(url, run, 2, ['--job-lock', '2']);
      // Kill the victim mid-step: while a job of step ≥ 3 is active in its hands.
      const killedAt = await jobHeldBy(queue, victim!, 3, coordinator);
      victim!.child.kill('SIGKILL');
      const v = await victim!.done;
      assert.equal(v.signal, 'SIGKILL');
      const late = ghn('worker', '--redis', url, '--run', run);
      const c = await coordinator.done;
      assert.equal(c.code, 0, c.stderr);
      const [s, l] = await Promise.all([steady!.done, late.done]);
      await close();
      assert.equal(s.code, 0, s.stderr);
      assert.equal(l.code, 0, l.stderr);
      assert.ok(sharesOf(l.stderr) > 0, `the late worker computed shares (killed at step ${killedAt.step + 1})`);
      assertSameWeights(ghnFile, await reference);
    });

    it('the same GHN with a worker frozen (SIGSTOP) while it holds a job, then thawed after the run moved on', async () => {
      const { ghnFile, coordinator, workers: [frozen, steady], queue, close } = await startRun(url, 'frozen', 2, ['--job-lock', '2']);
      const held = await jobHeldBy(queue, frozen!, 3, coordinator);
      frozen!.child.kill('SIGSTOP');
      // The run goes on without it (its job is taken over), two steps past the frozen one, then it wakes with a stale job.
      await stepIssued(queue, held.step + 2, coordinator);
      frozen!.child.kill('SIGCONT');
      const c = await coordinator.done;
      assert.equal(c.code, 0, c.stderr);
      const [f, s2] = await Promise.all([frozen!.done, steady!.done]);
      await close();
      assert.equal(f.code, 0, f.stderr);
      assert.equal(s2.code, 0, s2.stderr);
      assertSameWeights(ghnFile, await reference);
    });

    it('the same GHN with Redis killed and restarted empty mid-run: coordinator and worker wait, the run is re-published', async () => {
      // A Redis of its own, so the restart does not touch the other runs.
      const own = await startRedis();
      const ownUrl = `redis://127.0.0.1:${own}`;
      const { ghnFile, coordinator, workers: [worker], queue, close } = await startRun(ownUrl, 'restart', 1);
      // Restart once a job of step ≥ 3 exists: the run is mid-way, with work in flight.
      await stepIssued(queue, 3, coordinator);
      await close();
      const ownServer = servers.find((p) => p.spawnargs.includes(String(own)))!;
      ownServer.kill('SIGKILL');
      await new Promise((r) => ownServer.once('exit', r));
      await pause(1500);
      // Both were mid-run when Redis went away, and neither gave up while it was gone.
      assert.equal(coordinator.child.exitCode, null, 'the coordinator survived 1.5 s without Redis');
      assert.equal(worker!.child.exitCode, null, 'the worker survived 1.5 s without Redis');
      await startRedis([], own);
      const [c, w] = await Promise.all([coordinator.done, worker!.done]);
      assert.equal(c.code, 0, c.stderr);
      assert.equal(w.code, 0, w.stderr);
      assertSameWeights(ghnFile, await reference);
    });
  });
});
