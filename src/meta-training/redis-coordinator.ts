/**
 * The coordinator of a meta-training run over Redis (`ghn train --redis URL --run NAME`): each
 * meta-step publishes the GHN's weights once and becomes one BullMQ job per drawn architecture;
 * workers on any machine (redis-worker.ts) write each architecture's gradient back to Redis, and
 * the step's gradient is their sum in drawing order, so the run is the same bit for bit with any
 * number of workers, machines, retries or re-issues, and the same as a single-process run. Each
 * gradient is fetched, decoded and added (in order: OrderedSum) as soon as it is stored, while the
 * others are still computed, so what stays serial per step is the last share and the AdamW update.
 *
 * The coordinator builds no architecture: it draws from a record of the ones known to be unusable
 * (UsabilityRecord). A worker that cannot build or differentiate one says so instead of a gradient;
 * it is recorded and the step drawn again, which is exactly what a single-process run does
 * (train.ts serialStep): the new draw keeps every other architecture, whose shares are reused.
 *
 * Faults are BullMQ's and Redis's to absorb: a killed worker's job returns to the queue once its
 * lock lapses (BullMQ's stalled-job check), a failed job is retried, a job still active long after
 * its step's others finished is issued again (the first share written wins: identical by
 * construction), and a Redis that comes back empty gets the run's settings, weights and jobs again.
 */
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import * as tf from '../engine/tfjs-core.js';
import { GhnError } from '../errors.js';
import type { GhnModel } from '../ghn/model.js';
import { VERSION } from '../version.js';
import type { DrawingPool, MetaGradients } from './meta-batch.js';
import {
  BLOB_TTL_SECONDS, checkRunName, connectRedis, datasetDigest, decodeShare, encodeWeights, QUEUE_PREFIX, redactUrl, runKeys, type RunSettings,
  type Share,
} from './redis-transport.js';
import type { DistributedRun, DistributedSteps, StepDistributor } from './step-distributor.js';

/** One job: an architecture of a step, at the weights of that step. */
export interface ShareJob {
  session: string;
  step: number;
  /** Pool index of the architecture. */
  index: number;
  /** The step's architecture count: each share is cross-entropy / divisor. */
  divisor: number;
  images: number;
}

export interface RedisRunOptions {
  url: string;
  run: string;
  /** BullMQ job lock (default 30 s): how long a silent worker keeps its job before another takes it over. */
  lockSeconds?: number;
  /** Tries per job before the run fails (default 3). */
  attempts?: number;
}

/** What crossed Redis for the last step and where its time went, for the benchmark. */
export interface StepTraffic {
  weightBytes: number;
  shareBytes: number;
  jobs: number;
  reissued: number;
  /** Seconds to encode and store the weights and add the jobs. */
  publishSeconds: number;
  /** Seconds from the jobs added to every share fetched and decoded (collectSeconds included). */
  waitSeconds: number;
  /** Seconds of the wait spent fetching, decoding and adding shares: overlapped with the jobs still computing, but for the last. */
  collectSeconds: number;
  /** Seconds from the last share added to the step's gradient (its tensors) after the wait. */
  sumSeconds: number;
  /** Each architecture's compute seconds, as its worker measured them: wall, and its process's CPU. */
  shareSeconds: number[];
  shareCpuSeconds: number[];
}

/** The train split's architectures as the coordinator knows them: usable unless a worker reported otherwise. */
export class UsabilityRecord implements DrawingPool {
  readonly split = 'train' as const;
  private readonly unusable = new Set<number>();
  constructor(readonly size: number) {}
  get(index: number): boolean {
    return !this.unusable.has(index);
  }
  markUnusable(index: number): void {
    this.unusable.add(index);
  }
}

const POLL_MS = 250;
/** A job active this many times longer than the slowest finished share of its step is issued again. */
const SLOW_FACTOR = 4;

/**
 * A step's gradient: its shares summed in drawing order, per variable, as sumInOrder does with
 * tf.add, each share added as soon as every share before it in the draw is in (so only the last to
 * arrive is added after the wait). Float32Array `+=` adds in double and rounds to float32, which is
 * the correctly rounded float32 sum (double has more than 2·24+2 bits): tf.add's result bit for bit,
 * without one tensor per share and variable. Shares are read, not consumed: one drawn twice, or
 * kept across a redraw, is read again.
 */
export class OrderedSum {
  private next = 0;
  private loss = 0;
  private correct = 0;
  private readonly sums = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  constructor(readonly indices: readonly number[]) {}

  /** Adds the shares now present that follow the ones already added, in drawing order. */
  advance(shares: ReadonlyMap<number, Share>): void {
    for (let part; this.next < this.indices.length && (part = shares.get(this.indices[this.next]!)); this.next++) {
      this.loss += part.loss;
      this.correct += part.correct;
      for (const [name, g] of part.grads) {
        const acc = this.sums.get(name);
        if (!acc) {
          this.sums.set(name, { shape: g.shape, data: g.data.slice() });
          continue;
        }
        const a = acc.data, b = g.data;
        for (let i = 0; i < a.length; i++) a[i]! += b[i]!;
      }
    }
  }

  get complete(): boolean {
    return this.next === this.indices.length;
  }

  result(): MetaGradients {
    if (!this.complete) throw new Error(`OrderedSum: ${this.indices.length - this.next} of ${this.indices.length} shares missing`);
    return { loss: this.loss, correct: this.correct, grads: new Map([...this.sums].map(([name, s]) => [name, tf.tensor(s.data, [...s.shape])])) };
  }
}

/** The shares' sum in their order (OrderedSum at once). */
export function sumShares(parts: readonly Share[]): MetaGradients {
  const sum = new OrderedSum(parts.map((_, i) => i));
  sum.advance(new Map(parts.map((part, i) => [i, part])));
  return sum.result();
}

const jobKey = (j: ShareJob) => `${j.session}-${j.step}-${j.index}-${j.divisor}`;
const jobId = (j: ShareJob, copy: number) => `${jobKey(j)}${copy ? `-r${copy}` : ''}`;

export class RedisCoordinator implements DistributedSteps {
  lastTraffic: StepTraffic | undefined;
  readonly pool: UsabilityRecord;
  private readonly keys: ReturnType<typeof runKeys>;
  private wake: (() => void) | undefined;
  private readonly failures = new Map<string, string>();
  /** Seconds each finished job took (its worker's own measure), by job id. */
  private readonly seconds = new Map<string, number>();
  /** The blobs of the last step, deleted once the next is summed (a late copy of a job still finds them). */
  private previousKeys: string[] = [];

  private constructor(
    private readonly client: Redis, private readonly settings: RunSettings, private readonly queue: Queue,
    private readonly events: QueueEvents, private readonly eventsClient: Redis, private readonly attempts: number,
  ) {
    this.keys = runKeys(settings.run);
    this.pool = new UsabilityRecord(settings.poolSize);
    events.on('completed', ({ jobId: id, returnvalue }) => {
      const value = (typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue) as { seconds?: number } | null;
      if (typeof value?.seconds === 'number') this.seconds.set(id, value.seconds);
      this.wake?.();
    });
    events.on('failed', ({ jobId: id, failedReason }) => {
      this.failures.set(id, failedReason);
      this.wake?.();
    });
  }

  /** Connects (failing fast with one line) and returns the distributor trainGhn calls once the run is settled. */
  static async open(options: RedisRunOptions): Promise<{ distribute: StepDistributor; where: string }> {
    const run = checkRunName(options.run);
    (await connectRedis(options.url)).disconnect();
    return { distribute: (r) => RedisCoordinator.start(run, r, options), where: redactUrl(options.url) };
  }

  /** A session of the run: one per trainGhn call (a replay makes one per segment), with its own connections. */
  private static async start(run: string, r: DistributedRun, options: RedisRunOptions): Promise<RedisCoordinator> {
    const client = await connectRedis(options.url);
    const keys = runKeys(run);
    if (!r.data.source) throw new GhnError('usage', 'meta-training over Redis needs data loaded from a source workers can load too');
    const settings: RunSettings = {
      version: VERSION, run, session: randomUUID().slice(0, 8), config: r.config, poolSize: r.recipe.poolSize,
      spaceSeed: r.recipe.spaceSeed, seed: r.recipe.seed, task: r.task,
      data: { source: r.data.source, name: r.data.name, count: r.data.count, sha256: datasetDigest(r.data) },
      lockMs: Math.round(1000 * (options.lockSeconds ?? 30)),
    };
    const queue = new Queue(keys.queue, { connection: client, prefix: QUEUE_PREFIX });
    const eventsClient = client.duplicate();
    const events = new QueueEvents(keys.queue, { connection: eventsClient, prefix: QUEUE_PREFIX });
    await events.waitUntilReady();
    // Jobs an earlier session left waiting would only keep workers from this one's.
    await queue.drain(true);
    const coordinator = new RedisCoordinator(client, settings, queue, events, eventsClient, options.attempts ?? 3);
    await coordinator.publishSettings();
    return coordinator;
  }

  private async publishSettings(): Promise<void> {
    await this.client.multi().set(this.keys.settings, JSON.stringify(this.settings)).set(this.keys.state, 'running').exec();
  }

  async step(ghn: GhnModel, step: number, images: number, draw: () => number[]): Promise<{ indices: number[]; gradients: MetaGradients }> {
    const { session } = this.settings;
    const t0 = performance.now();
    const weights = encodeWeights(ghn);
    const traffic: StepTraffic = {
      weightBytes: weights.length, shareBytes: 0, jobs: 0, reissued: 0, publishSeconds: 0, waitSeconds: 0, collectSeconds: 0, sumSeconds: 0,
      shareSeconds: [], shareCpuSeconds: [],
    };
    await this.client.set(this.keys.weights(session, step), weights, 'EX', BLOB_TTL_SECONDS);
    const shares = new Map<number, Share>();
    const stepKeys = [this.keys.weights(session, step)];
    traffic.publishSeconds = (performance.now() - t0) / 1000;
    let sum: OrderedSum | undefined;
    for (;;) {
      const indices = draw();
      // A redraw (an architecture found unusable) may change the order: its sum starts again.
      if (!sum || sum.indices.join() !== indices.join()) sum = new OrderedSum(indices);
      const ordered = sum;
      ordered.advance(shares);
      const divisor = indices.length;
      const todo = [...new Set(indices)].filter((i) => !shares.has(i)).map((index): ShareJob => ({ session, step, index, divisor, images }));
      if (!todo.length) {
        const t2 = performance.now();
        const gradients = ordered.result();
        traffic.sumSeconds = (performance.now() - t2) / 1000;
        const stepJobs = `${session}-${step}-`;
        for (const map of [this.seconds, this.failures]) for (const id of map.keys()) if (id.startsWith(stepJobs)) map.delete(id);
        if (this.previousKeys.length) await this.client.del(...this.previousKeys);
        this.previousKeys = stepKeys;
        this.lastTraffic = traffic;
        return { indices, gradients };
      }
      const t1 = performance.now();
      await this.add(todo.map((j) => [j, 0] as const));
      traffic.jobs += todo.length;
      traffic.publishSeconds += (performance.now() - t1) / 1000;
      const t2 = performance.now();
      for (const j of todo) stepKeys.push(this.keys.share(session, step, j.index, j.divisor));
      await this.collect(todo, weights, traffic, (j, bytes) => {
        const share = decodeShare(bytes, `share of architecture ${j.index} (step ${step + 1})`);
        if ('unusable' in share) {
          console.warn(`architecture ${j.index} dropped: ${share.unusable}`);
          this.pool.markUnusable(j.index);
        } else {
          shares.set(j.index, share);
          traffic.shareSeconds.push(share.seconds);
          traffic.shareCpuSeconds.push(share.cpuSeconds);
          ordered.advance(shares);
        }
      });
      traffic.waitSeconds += (performance.now() - t2) / 1000;
    }
  }

  private async add(jobs: readonly (readonly [ShareJob, number])[]): Promise<void> {
    const opts = (j: ShareJob, copy: number): JobsOptions => ({
      jobId: jobId(j, copy), attempts: this.attempts, backoff: { type: 'fixed', delay: 500 },
      removeOnComplete: { age: 3600 }, removeOnFail: { age: 24 * 3600 },
    });
    await this.queue.addBulk(jobs.map(([j, copy]) => ({ name: 'share', data: j, opts: opts(j, copy) })));
  }

  /**
   * Until every job of `jobs` has stored its share, each share fetched and decoded (`take`) as soon
   * as it is stored, while the others are still computed: only the last ones to finish are fetched
   * after the wait. Slow jobs are re-issued, an emptied Redis re-published.
   */
  private async collect(jobs: ShareJob[], weights: Buffer, traffic: StepTraffic, take: (job: ShareJob, bytes: Buffer) => void): Promise<void> {
    const { session } = this.settings;
    const pending = new Map(jobs.map((j) => [jobKey(j), { job: j, copies: 1 }]));
    const shareKey = (j: ShareJob) => this.keys.share(session, j.step, j.index, j.divisor);
    while (pending.size) {
      await this.nextWake();
      const t0 = performance.now();
      // One round trip: every pending share (nil until stored) and whether the run is still there.
      const look = this.client.pipeline();
      for (const { job } of pending.values()) look.getBuffer(shareKey(job));
      look.exists(this.keys.settings);
      const replies = (await look.exec()) ?? [];
      const runThere = replies.at(-1)?.[1] === 1;
      let fetched = 0;
      [...pending].forEach(([key, { job }], i) => {
        const [error, bytes] = replies[i] ?? [];
        if (error || !Buffer.isBuffer(bytes)) return;
        pending.delete(key);
        traffic.shareBytes += bytes.length;
        take(job, bytes);
        fetched++;
      });
      if (fetched) traffic.collectSeconds += (performance.now() - t0) / 1000;
      for (const { job, copies } of pending.values()) {
        const ids = Array.from({ length: copies }, (_, c) => jobId(job, c));
        if (ids.every((id) => this.failures.has(id))) {
          throw new GhnError('unsupported', `architecture ${job.index} (step ${job.step + 1}) failed on the workers: ${this.failures.get(ids[0]!)}`);
        }
      }
      if (pending.size && !runThere) {
        // Redis came back without the run (restarted with no persistence): publish it again.
        await this.publishSettings();
        await this.client.set(this.keys.weights(session, jobs[0]!.step), weights, 'EX', BLOB_TTL_SECONDS);
        await this.add([...pending.values()].map(({ job, copies }) => [job, copies - 1] as const));
      }
      traffic.reissued += await this.reissueSlow(jobs[0]!.step, pending);
    }
  }

  /** Issues again the jobs active for much longer than their step's finished ones took. */
  private async reissueSlow(step: number, pending: Map<string, { job: ShareJob; copies: number }>): Promise<number> {
    const prefix = `${this.settings.session}-${step}-`;
    const taken = [...this.seconds].filter(([id]) => id.startsWith(prefix)).map(([, s]) => s);
    if (!taken.length || !pending.size) return 0;
    const limit = Math.max(1, SLOW_FACTOR * Math.max(...taken));
    let reissued = 0;
    for (const entry of pending.values()) {
      const latest = await this.queue.getJob(jobId(entry.job, entry.copies - 1));
      if (!latest?.processedOn || (Date.now() - latest.processedOn) / 1000 < limit || (await latest.getState()) !== 'active') continue;
      await this.add([[entry.job, entry.copies]]);
      entry.copies++;
      reissued++;
    }
    return reissued;
  }

  private nextWake(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); resolve(); };
      const timer = setTimeout(done, POLL_MS);
      this.wake = done;
    });
  }

  async stop(finished = false): Promise<void> {
    if (finished) {
      await this.client.set(this.keys.state, 'done');
      await this.queue.drain(true);
    }
    if (this.previousKeys.length) await this.client.del(...this.previousKeys);
    await this.events.close();
    await this.queue.close();
    this.eventsClient.disconnect();
    this.client.disconnect();
  }
}
