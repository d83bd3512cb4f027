/**
 * Bounded concurrency for CPU-bound jobs: `size` worker threads, each running one job at a time,
 * and a queue of at most `queueLimit` waiting jobs. A full queue answers 503 at once; every job has
 * a deadline counted from its arrival — spent waiting, it is a 503, spent running, the worker is
 * terminated (the only way to stop synchronous work) and replaced, and the answer is 504.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { forkEntry } from '../util/fork-entry.js';
import { HttpError } from './http-errors.js';
import { GhnError } from '../errors.js';
import { type Job, type JobOutput, type WorkerReply, type WorkerRequest } from './jobs.js';

export interface PoolOptions {
  size: number;
  queueLimit: number;
  timeoutMs: number;
}

export interface PoolStats {
  workers: number;
  ready: number;
  running: number;
  queued: number;
  completed: number;
  rejected: number;
  timedOut: number;
  restarts: number;
}

export interface JobTiming {
  waitMs: number;
  runMs: number;
}

interface Pending {
  id: number;
  job: Job;
  arrived: number;
  started?: number;
  timer: NodeJS.Timeout;
  settled?: boolean;
  resolve(value: { output: JobOutput; timing: JobTiming }): void;
  reject(err: unknown): void;
}

interface Slot {
  /** Absent while a failed start backs off before the next attempt. */
  worker?: ChildProcess;
  ready: boolean;
  current?: Pending;
}

const SELF = fileURLToPath(import.meta.url);

/** The worker entry beside this file (worker.ts under tsx, worker.js when built). */
function spawnWorker(): ChildProcess {
  return forkEntry(path.join(path.dirname(SELF), `worker${path.extname(SELF)}`));
}

/** A worker keeps the server's event loop alive only while it has a job (or is being stopped). */
function setBusy(child: ChildProcess, busy: boolean): void {
  if (busy) {
    child.ref();
    child.channel?.ref();
  } else {
    child.unref();
    child.channel?.unref();
  }
}

/** Stops a worker process and resolves when it is gone. */
function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  setBusy(child, true);
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;
  private readonly counts = { completed: 0, rejected: 0, timedOut: 0, restarts: 0 };
  /** Workers that died before becoming ready, in a row: spacing out restarts of a broken install. */
  private startupFailures = 0;
  /** Recent run times, for the Retry-After estimate. */
  private recentRunMs = 1000;

  constructor(readonly options: PoolOptions) {
    for (let i = 0; i < options.size; i++) this.slots.push(this.startSlot());
  }

  get stats(): PoolStats {
    return {
      workers: this.slots.length,
      ready: this.slots.filter((s) => s.ready).length,
      running: this.slots.filter((s) => s.current).length,
      queued: this.queue.length,
      ...this.counts,
    };
  }

  /** Resolves once every worker has loaded its backend (for tests and a warm start). */
  async whenReady(): Promise<void> {
    while (!this.closed && this.slots.some((s) => !s.ready)) await new Promise((r) => setTimeout(r, 20));
  }

  /** Seconds a rejected client should wait: the time to drain the queue once, at least 1. */
  retryAfterSeconds(): number {
    return Math.max(1, Math.ceil((this.recentRunMs * (this.queue.length + 1)) / this.slots.length / 1000));
  }

  run(job: Job): Promise<{ output: JobOutput; timing: JobTiming }> {
    if (this.closed) return Promise.reject(new HttpError(503, 'shutting-down', 'the server is shutting down'));
    const idle = this.slots.find((s) => s.ready && !s.current);
    if (!idle && this.queue.length >= this.options.queueLimit) {
      this.counts.rejected += 1;
      return Promise.reject(this.busy(`all ${this.slots.length} workers busy and ${this.queue.length} jobs queued`));
    }
    return new Promise((resolve, reject) => {
      const pending: Pending = {
        id: this.nextId++, job, arrived: performance.now(), resolve, reject,
        timer: setTimeout(() => this.expire(pending), this.options.timeoutMs),
      };
      if (idle) this.dispatch(idle, pending);
      else this.queue.push(pending);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) this.settle(p, new HttpError(503, 'shutting-down', 'the server is shutting down'));
    await Promise.all(this.slots.map(async (s) => {
      if (s.current) this.settle(s.current, new HttpError(503, 'shutting-down', 'the server is shutting down'));
      if (s.worker) await stopWorker(s.worker);
    }));
  }

  private busy(message: string): HttpError {
    return new HttpError(503, 'busy', `${message}; retry later`, { 'retry-after': String(this.retryAfterSeconds()) });
  }

  private startSlot(): Slot {
    const worker = spawnWorker();
    const slot: Slot = { worker, ready: false };
    worker.on('message', (m: WorkerReply) => this.onReply(slot, m));
    worker.on('error', (err) => this.onCrash(slot, err));
    worker.on('exit', (code) => this.onCrash(slot, new Error(`worker exited with code ${code}`)));
    setBusy(worker, false);
    return slot;
  }

  private dispatch(slot: Slot, pending: Pending): void {
    slot.current = pending;
    pending.started = performance.now();
    const request: WorkerRequest = { id: pending.id, job: pending.job };
    setBusy(slot.worker!, true);
    slot.worker!.send(request);
  }

  private onReply(slot: Slot, message: WorkerReply): void {
    if (message.type === 'ready') {
      slot.ready = true;
      this.startupFailures = 0;
      if (!slot.current) this.next(slot);
      return;
    }
    const pending = slot.current;
    if (!pending || pending.id !== message.id) return;
    slot.current = undefined;
    setBusy(slot.worker!, false);
    const runMs = performance.now() - pending.started!;
    this.recentRunMs = 0.8 * this.recentRunMs + 0.2 * runMs;
    this.counts.completed += 1;
    if (message.type === 'done') this.settle(pending, undefined, { output: message.output, timing: { waitMs: pending.started! - pending.arrived, runMs } });
    else this.settle(pending, message.error.kind ? new GhnError(message.error.kind, message.error.message) : new Error(message.error.message));
    this.next(slot);
  }

  private next(slot: Slot): void {
    const pending = this.queue.shift();
    if (pending) this.dispatch(slot, pending);
  }

  private expire(pending: Pending): void {
    const queued = this.queue.indexOf(pending);
    this.counts.timedOut += 1;
    const seconds = (this.options.timeoutMs / 1000).toFixed(1);
    if (queued >= 0) {
      this.queue.splice(queued, 1);
      this.settle(pending, this.busy(`waited ${seconds} s in the queue without a free worker`));
      return;
    }
    const slot = this.slots.find((s) => s.current === pending);
    this.settle(pending, new HttpError(504, 'timeout', `the job did not finish within the ${seconds} s time limit`));
    if (slot) this.replace(slot);
  }

  /** Terminates a worker (stuck in a job, or dead) and puts a fresh one in its place. */
  private replace(slot: Slot): void {
    slot.current = undefined;
    slot.worker?.removeAllListeners();
    slot.worker?.on('error', () => {});
    if (slot.worker) void stopWorker(slot.worker);
    if (this.closed) return;
    this.counts.restarts += 1;
    const delay = slot.ready ? 0 : Math.min(30_000, 500 * 2 ** this.startupFailures++);
    // Until the fresh worker reports ready, queued jobs wait (and their deadlines keep running).
    const fresh: Slot = delay ? { ready: false } : this.startSlot();
    this.slots[this.slots.indexOf(slot)] = fresh;
    if (delay) setTimeout(() => { if (!this.closed && this.slots.includes(fresh)) this.slots[this.slots.indexOf(fresh)] = this.startSlot(); }, delay).unref();
  }

  private onCrash(slot: Slot, err: Error): void {
    if (this.closed || !this.slots.includes(slot)) return;
    if (slot.current) this.settle(slot.current, new HttpError(500, 'worker-crashed', `the worker running this job stopped: ${err.message}`));
    this.replace(slot);
  }

  private settle(pending: Pending, err: unknown, value?: { output: JobOutput; timing: JobTiming }): void {
    if (pending.settled) return;
    pending.settled = true;
    clearTimeout(pending.timer);
    if (err !== undefined) pending.reject(err);
    else pending.resolve(value!);
  }
}
