/**
 * A worker of a meta-training run over Redis (`ghn worker --redis URL --run NAME`), on any machine:
 * it loads the images and the architecture space the run's settings record (refusing other data or
 * another ghn version), then takes BullMQ jobs (one architecture of one step each), fetches the
 * GHN's weights once per step and writes that architecture's gradient back (redis-coordinator.ts),
 * or, for one it cannot build or differentiate, the reason: the coordinator then draws around it
 * as a single-process run does. It leaves when the coordinator marks the run done.
 */
import { hostname } from 'node:os';
import path from 'node:path';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import * as tf from '../engine/tfjs-core.js';
import { initBackend } from '../engine/backend.js';
import { loadSource, type Dataset } from '../data/index.js';
import { GhnError } from '../errors.js';
import { GhnModel } from '../ghn/model.js';
import { ArchitecturePool, TRAINING_POOL_CACHE } from './arch-pool.js';
import { archGradients, imageBatch } from './meta-batch.js';
import type { ShareJob } from './redis-coordinator.js';
import {
  BLOB_TTL_SECONDS, checkRunName, checkVersion, connectRedis, datasetDigest, decodeWeights, encodeShare, encodeUnusable, QUEUE_PREFIX, readSettings,
  redactUrl, runKeys, type RunSettings,
} from './redis-transport.js';

export interface RedisWorkerOptions {
  url: string;
  run: string;
  /** Where this machine keeps the run's dataset, when not where the coordinator's does. */
  dataDir?: string;
  /** Called with one line per notable event (joined, new session, finished). */
  onLog?: (line: string) => void;
}

/** How long a worker waits between looks at whether the run is done. */
const STATE_POLL_MS = 1000;

/** The images, GHN copy and pool of one coordinator session. */
interface SessionState {
  settings: RunSettings;
  data: Dataset;
  ghn: GhnModel;
  pool: ArchitecturePool;
  weightsOf?: number;
  batch?: { step: number; images: number; x: tf.Tensor; y: tf.Tensor };
}

/** The training images the settings name, from `dataDir` when given; refused unless they are the coordinator's. */
function loadRunData(settings: RunSettings, dataDir: string | undefined): Dataset {
  const recorded = settings.data;
  const source = dataDir ? { ...recorded.source, path: path.resolve(dataDir) } : recorded.source;
  const full = loadSource(source, 'train');
  if (full.count < recorded.count) {
    throw new GhnError('bad-input', `${source.path} has ${full.count} training images; the run trains on ${recorded.count} of ${recorded.name}`);
  }
  const size = full.shape.reduce((a, b) => a * b, 1);
  const data = { ...full, count: recorded.count, images: full.images.subarray(0, recorded.count * size), labels: full.labels.subarray(0, recorded.count) };
  if (datasetDigest(data) !== recorded.sha256) {
    throw new GhnError('bad-input', `the images at ${source.path} are not the run's (${recorded.name}, ${recorded.count} images, sha256 ${recorded.sha256.slice(0, 12)}…)`);
  }
  return data;
}

function openSession(settings: RunSettings, dataDir: string | undefined, previous?: SessionState): SessionState {
  checkVersion(settings);
  const sameData = previous && previous.settings.data.sha256 === settings.data.sha256;
  const data = sameData ? previous.data : loadRunData(settings, dataDir);
  closeSession(previous);
  return {
    settings, data, ghn: new GhnModel(settings.config),
    // No smoke test: each architecture is run for real, and one that fails is reported, as in a serial run.
    pool: new ArchitecturePool('train', settings.poolSize, settings.spaceSeed, TRAINING_POOL_CACHE, false, settings.task),
  };
}

function closeSession(s: SessionState | undefined): void {
  if (!s) return;
  if (s.batch) tf.dispose([s.batch.x, s.batch.y]);
  s.pool.dispose();
  s.ghn.dispose();
}

/** Joins the run and computes its jobs until the run is done; resolves with the shares computed here. */
export async function runRedisWorker(options: RedisWorkerOptions): Promise<{ shares: number }> {
  const run = checkRunName(options.run);
  const where = redactUrl(options.url);
  const client = await connectRedis(options.url);
  const keys = runKeys(run);
  const log = options.onLog ?? (() => {});
  let worker: Worker | undefined;
  const workerClient = client.duplicate();
  let session: SessionState | undefined;
  let shares = 0;
  try {
    const settings = await readSettings(client, run, where);
    checkVersion(settings);
    if ((await client.get(keys.state)) === 'done') {
      log(`run ${run} on ${where} has finished: nothing to compute`);
      return { shares };
    }
    await initBackend();
    session = openSession(settings, options.dataDir);
    log(`joined run ${run} on ${where}: ${settings.data.name}, ${settings.data.count} images, session ${settings.session}`);

    const compute = async (job: Job<ShareJob>) => {
      const j = job.data;
      if (j.session !== session!.settings.session) {
        const now = await readSettings(client, run, where);
        if (now.session !== j.session) return { stale: true }; // a job an earlier session left behind
        session = openSession(now, options.dataDir, session);
        log(`run ${run}: new coordinator session ${now.session}`);
      }
      const s = session!;
      const shareKey = keys.share(j.session, j.step, j.index, j.divisor);
      if (await client.exists(shareKey)) return { duplicate: true }; // another copy of the job won
      if (s.weightsOf !== j.step) {
        const bytes = await client.getBuffer(keys.weights(j.session, j.step));
        if (!bytes) throw new Error(`the weights of step ${j.step + 1} are not on Redis`);
        for (const [name, values] of decodeWeights(bytes, `weights of step ${j.step + 1}`)) {
          const v = s.ghn.variables.get(name)!;
          const t = tf.tensor(values, v.shape);
          v.assign(t);
          t.dispose(); // the variable holds its own reference: without this each step's weights stay allocated
        }
        s.weightsOf = j.step;
      }
      if (s.batch?.step !== j.step || s.batch.images !== j.images) {
        if (s.batch) tf.dispose([s.batch.x, s.batch.y]);
        s.batch = { step: j.step, images: j.images, ...imageBatch(s.data, j.images, s.settings.seed, j.step) };
      }
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      const arch = s.pool.get(j.index);
      let blob: Buffer;
      if (!arch) {
        blob = encodeUnusable('its graph cannot be imported (see this worker\'s log)');
      } else {
        try {
          const part = archGradients(s.ghn, arch, s.batch.x, s.batch.y, j.divisor);
          const grads = new Map([...part.grads].map(([name, g]) => [name, { shape: g.shape, data: g.dataSync() as Float32Array }]));
          tf.dispose([...part.grads.values()]);
          const cpu = process.cpuUsage(cpu0);
          blob = encodeShare(s.settings.config, {
            loss: part.loss, correct: part.correct, seconds: (performance.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6, grads,
          });
        } catch (e) {
          s.pool.markUnusable(j.index);
          blob = encodeUnusable((e as Error).message);
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      // NX: the first copy's result stands; every copy computes the same bytes.
      await client.set(shareKey, blob, 'EX', BLOB_TTL_SECONDS, 'NX');
      shares++;
      return { seconds };
    };

    const lockDuration = settings.lockMs;
    worker = new Worker<ShareJob>(keys.queue, compute, {
      connection: workerClient, prefix: QUEUE_PREFIX, concurrency: 1, name: `${hostname()}:${process.pid}`,
      lockDuration, stalledInterval: Math.max(1000, Math.round(lockDuration / 2)), maxStalledCount: 10,
    });
    worker.on('error', (e) => log(`run ${run}: ${e.message}`));
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, STATE_POLL_MS));
      if ((await client.get(keys.state)) === 'done') break;
    }
    log(`run ${run} is done: ${shares} shares computed here`);
    return { shares };
  } finally {
    await worker?.close();
    closeSession(session);
    workerClient.disconnect();
    client.disconnect();
  }
}
