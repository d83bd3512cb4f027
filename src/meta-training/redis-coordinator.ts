/**
 * The coordinator of a meta-training run over Redis (`ghn train --redis URL --run NAME`): each
 * meta-step publishes the GHN's weights once and becomes one BullMQ job per drawn architecture;
 * workers on any machine (redis-worker.ts) write each architecture's gradient back to Redis, and
 * the step's gradient is their sum in drawing order, as with forked workers, so the run is the same
 * bit for bit with any number of workers, machines, retries or re-issues.
 *
 * Faults are BullMQ's and Redis's to absorb: a killed worker's job returns to the queue once its
 * lock lapses (BullMQ's stalled-job check), a failed job is retried, a job still active long after
 * its peers finished is issued again (the first share written wins: identical by construction),
 * and a Redis that comes back empty gets the run's settings, weights and missing jobs again.
 */
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import * as tf from '../engine/tfjs-core.js';
import { GhnError } from '../errors.js';
import type { GhnModel } from '../ghn/model.js';
import { VERSION } from '../version.js';
import { sumInOrder, type MetaGradients } from './meta-batch.js';
import {
  BLOB_TTL_SECONDS, checkRunName, connectRedis, datasetDigest, decodeShare, encodeWeights, QUEUE_PREFIX, redactUrl, runKeys, type RunSettings,
} from './redis-transport.js';
import type { DistributedRun, DistributedSteps, StepDistributor } from './step-distributor.js';

/** One job: an architecture of a step, at the weights of that step. */
export interface ShareJob {
  session: string;
  step: number;
  /** Position in the step's drawing order (where its share goes in the sum). */
  position: number;
  /** Pool index of the architecture. */
  index: number;
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

/** What crossed Redis for the last step, for the benchmark. */
export interface StepTraffic {
  weightBytes: number;
  shareBytes: number;
  jobs: number;
  reissued: number;
}

const POLL_MS = 250;
/** A job active this many times longer than the slowest share of its step so far is issued again. */
const SLOW_FACTOR = 4;

const jobId = (j: ShareJob, copy: number) => `${j.session}-${j.step}-${j.position}${copy ? `-r${copy}` : ''}`;

export class RedisCoordinator implements DistributedSteps {
  lastTraffic: StepTraffic = { weightBytes: 0, shareBytes: 0, jobs: 0, reissued: 0 };
  private readonly keys: ReturnType<typeof runKeys>;
  private wake: (() => void) | undefined;
  private readonly failures = new Map<string, string>();
  /** Seconds each finished job took (its worker's own measure), by job id. */
  private readonly seconds = new Map<string, number>();
  private previous: { step: number; count: number } | undefined;

  private constructor(
    private readonly client: Redis, private readonly run: string, private readonly settings: RunSettings,
    private readonly queue: Queue, private readonly events: QueueEvents, private readonly eventsClient: Redis,
    private readonly attempts: number,
  ) {
    this.keys = runKeys(run);
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
    const client = await connectRedis(options.url);
    const where = redactUrl(options.url);
    const distribute: StepDistributor = (r) => RedisCoordinator.start(client, run, r, options);
    return { distribute, where };
  }

  private static async start(client: Redis, run: string, r: DistributedRun, options: RedisRunOptions): Promise<RedisCoordinator> {
    const keys = runKeys(run);
    if (!r.data.source) throw new GhnError('usage', 'meta-training over Redis needs data loaded from a source workers can load too');
    const settings: RunSettings = {
      version: VERSION, session: randomUUID().slice(0, 8), config: r.config, poolSize: r.recipe.poolSize,
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
    const coordinator = new RedisCoordinator(client, run, settings, queue, events, eventsClient, options.attempts ?? 3);
    await coordinator.publishSettings();
    return coordinator;
  }

  private async publishSettings(): Promise<void> {
    await this.client.multi().set(this.keys.settings, JSON.stringify(this.settings)).set(this.keys.state, 'running').exec();
  }

  async step(ghn: GhnModel, step: number, images: number, indices: readonly number[]): Promise<MetaGradients> {
    const { session } = this.settings;
    const weights = encodeWeights(ghn);
    const jobs: ShareJob[] = indices.map((index, position) => ({ session, step, position, index, divisor: indices.length, images }));
    const traffic: StepTraffic = { weightBytes: weights.length, shareBytes: 0, jobs: jobs.length, reissued: 0 };
    const publish = async () => {
      await this.client.set(this.keys.weights(session, step), weights, 'EX', BLOB_TTL_SECONDS);
      await this.add(jobs.map((j) => [j, 0] as const));
    };
    await publish();
    const pending = new Map(jobs.map((j) => [j.position, { job: j, copies: 1 }]));
    while (pending.size) {
      await this.nextWake();
      const present = await this.client.exists(...[...pending.keys()].map((p) => this.keys.share(session, step, p)));
      if (present > 0) {
        for (const p of [...pending.keys()]) if (await this.client.exists(this.keys.share(session, step, p))) pending.delete(p);
      }
      for (const { job, copies } of pending.values()) {
        const ids = Array.from({ length: copies }, (_, c) => jobId(job, c));
        if (ids.every((id) => this.failures.has(id))) {
          throw new GhnError('unsupported', `architecture ${job.index} (step ${step + 1}) failed on the workers: ${this.failures.get(ids[0]!)}`);
        }
      }
      if (!(await this.client.exists(this.keys.settings))) {
        // Redis came back without the run (restarted with no persistence): publish it again.
        await this.publishSettings();
        await publish();
      }
      traffic.reissued += await this.reissueSlow(step, pending);
    }
    const parts: MetaGradients[] = [];
    for (const j of jobs) {
      const bytes = await this.client.getBuffer(this.keys.share(session, step, j.position));
      if (!bytes) throw new GhnError('unsupported', `the share of architecture ${j.index} (step ${step + 1}) vanished from Redis`);
      traffic.shareBytes += bytes.length;
      const share = decodeShare(bytes, `share ${j.position} of step ${step + 1}`);
      const grads = new Map([...share.grads].map(([name, g]) => [name, tf.tensor(g.data, [...g.shape])]));
      parts.push({ loss: share.loss, correct: share.correct, grads });
    }
    await this.forgetStep(this.previous);
    this.previous = { step, count: indices.length };
    this.lastTraffic = traffic;
    return sumInOrder(parts);
  }

  private async add(jobs: readonly (readonly [ShareJob, number])[]): Promise<void> {
    const opts = (j: ShareJob, copy: number): JobsOptions => ({
      jobId: jobId(j, copy), attempts: this.attempts, backoff: { type: 'fixed', delay: 500 },
      removeOnComplete: { age: 3600 }, removeOnFail: { age: 24 * 3600 },
    });
    await this.queue.addBulk(jobs.map(([j, copy]) => ({ name: 'share', data: j, opts: opts(j, copy) })));
  }

  /** Issues again the jobs active for much longer than the step's finished shares took. */
  private async reissueSlow(step: number, pending: Map<number, { job: ShareJob; copies: number }>): Promise<number> {
    const prefix = `${this.settings.session}-${step}-`;
    const taken = [...this.seconds].filter(([id]) => id.startsWith(prefix)).map(([, s]) => s);
    if (!taken.length) return 0;
    const limit = Math.max(1, SLOW_FACTOR * Math.max(...taken));
    let reissued = 0;
    for (const entry of pending.values()) {
      const active = await this.queue.getJob(jobId(entry.job, entry.copies - 1));
      if (!active?.processedOn || (await active.getState()) !== 'active' || (Date.now() - active.processedOn) / 1000 < limit) continue;
      await this.add([[entry.job, entry.copies]]);
      entry.copies++;
      reissued++;
    }
    return reissued;
  }

  /** The weights and shares of a step every share of the next one has been summed after. */
  private async forgetStep(previous: { step: number; count: number } | undefined): Promise<void> {
    if (!previous) return;
    const { session } = this.settings;
    const { step, count } = previous;
    for (const id of this.seconds.keys()) if (id.startsWith(`${session}-${step}-`)) this.seconds.delete(id);
    await this.client.del(this.keys.weights(session, step), ...Array.from({ length: count }, (_, p) => this.keys.share(session, step, p)));
  }

  private nextWake(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, POLL_MS);
      function done() { clearTimeout(timer); resolve(); }
      this.wake = done;
    });
  }

  async stop(finished = false): Promise<void> {
    if (finished) {
      await this.client.set(this.keys.state, 'done');
      await this.queue.drain(true);
    }
    await this.events.close();
    await this.queue.close();
    this.eventsClient.disconnect();
    this.client.disconnect();
  }

  get runName(): string {
    return this.run;
  }
}
