/**
 * Meta-training over Redis with BullMQ, end to end through the CLI against a real redis-server
 * started here on a free loopback port: `ghn train --redis` with 3 `ghn worker` processes gives the
 * single-process run's GHN byte for byte; so does a run in which one worker is SIGKILLed while it
 * holds a job (BullMQ's stalled-job check hands the job to another) and one joins late. Bad input
 * (unreachable Redis, wrong or missing password, unknown run) ends in one line, non-zero, < 10 s.
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
import { decodeGhn } from '../src/ghn/serialize.js';
import { QUEUE_PREFIX, runKeys } from '../src/meta-training/redis-transport.js';
import type { ShareJob } from '../src/meta-training/redis-coordinator.js';

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

async function startRedis(extra: string[] = []): Promise<number> {
  const port = await freePort();
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

describe('meta-training over Redis (BullMQ)', { skip }, () => {
  let port = 0;
  let url = '';
  let reference = '';

  before(async () => {
    port = await startRedis();
    url = `redis://127.0.0.1:${port}`;
    reference = path.join(tmp, 'single');
    const r = await ghn('train', '--out', reference, ...RECIPE).done;
    assert.equal(r.code, 0, r.stderr);
    reference += '.ghn';
  });

  after(() => {
    for (const p of [...spawned, ...servers]) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  });

  it('1 coordinator + 3 workers give the single-process GHN byte for byte', async () => {
    const out = path.join(tmp, 'three');
    const coordinator = ghn('train', '--out', out, ...RECIPE, '--redis', url, '--run', 'three');
    // Workers join once the coordinator has recorded the run.
    const client = new Redis(url);
    while (!(await client.get(runKeys('three').settings))) await new Promise((r) => setTimeout(r, 100));
    const workers = [1, 2, 3].map(() => ghn('worker', '--redis', url, '--run', 'three'));
    const c = await coordinator.done;
    assert.equal(c.code, 0, c.stderr);
    const w = await Promise.all(workers.map((p) => p.done));
    client.disconnect();
    w.forEach((r) => assert.equal(r.code, 0, r.stderr));
    assert.ok(w.every((r) => sharesOf(r.stderr) > 0), 'every worker took part');
    assertSameWeights(`${out}.ghn`, reference);
  });

  it('the same GHN with a worker SIGKILLed while it holds a job and one joining late', async () => {
    const out = path.join(tmp, 'faults');
    const run = 'faults';
    const coordinator = ghn('train', '--out', out, ...RECIPE, '--redis', url, '--run', run, '--job-lock', '2');
    const client = new Redis(url, { maxRetriesPerRequest: null });
    while (!(await client.get(runKeys(run).settings))) await new Promise((r) => setTimeout(r, 100));
    const victim = ghn('worker', '--redis', url, '--run', run);
    const steady = ghn('worker', '--redis', url, '--run', run);
    const queue = new Queue<ShareJob>(runKeys(run).queue, { connection: client, prefix: QUEUE_PREFIX });
    // Kill the victim mid-step: while a job of step ≥ 3 is active in its hands.
    let killedAt: ShareJob | undefined;
    while (!killedAt) {
      const active = await queue.getJobs(['active']);
      const held = active.find((j) => j.processedBy?.endsWith(`:${victim.child.pid}`) && j.data.step >= 3);
      if (held) {
        victim.child.kill('SIGKILL');
        killedAt = held.data;
      } else {
        assert.equal(coordinator.child.exitCode, null, 'the run ended before the victim held a job');
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const v = await victim.done;
    assert.equal(v.signal, 'SIGKILL');
    const late = ghn('worker', '--redis', url, '--run', run);
    const c = await coordinator.done;
    assert.equal(c.code, 0, c.stderr);
    const [s, l] = await Promise.all([steady.done, late.done]);
    await queue.close();
    client.disconnect();
    assert.equal(s.code, 0, s.stderr);
    assert.equal(l.code, 0, l.stderr);
    assert.ok(sharesOf(l.stderr) > 0, `the late worker computed shares (killed at step ${killedAt.step + 1})`);
    assertSameWeights(`${out}.ghn`, reference);
  });

  describe('bad input: one line, non-zero exit, within 10 s', () => {
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
});
