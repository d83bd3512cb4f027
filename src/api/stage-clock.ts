/**
 * Wall and CPU milliseconds per named stage. CPU is this process's user + system time, every
 * thread included (onnxruntime's, libuv's): on a shared machine wall time also counts other jobs'
 * turns on the cores, CPU time only the work itself.
 */
export type StageTimes<S extends string> = Record<S, number>;

export class StageClock<S extends string> {
  readonly wall: StageTimes<S>;
  readonly cpu: StageTimes<S>;

  constructor(stages: readonly S[]) {
    this.wall = Object.fromEntries(stages.map((s) => [s, 0])) as StageTimes<S>;
    this.cpu = Object.fromEntries(stages.map((s) => [s, 0])) as StageTimes<S>;
  }

  /** Runs `fn`, adding its time to `stage` (stages may be measured in several parts). */
  measure<T>(stage: S, fn: () => T): T {
    const start = this.now();
    try {
      return fn();
    } finally {
      this.add(stage, start);
    }
  }

  async measureAsync<T>(stage: S, fn: () => Promise<T>): Promise<T> {
    const start = this.now();
    try {
      return await fn();
    } finally {
      this.add(stage, start);
    }
  }

  private now(): { wall: number; cpu: NodeJS.CpuUsage } {
    return { wall: performance.now(), cpu: process.cpuUsage() };
  }

  private add(stage: S, start: { wall: number; cpu: NodeJS.CpuUsage }): void {
    this.wall[stage] += performance.now() - start.wall;
    const used = process.cpuUsage(start.cpu);
    this.cpu[stage] += (used.user + used.system) / 1000;
  }
}
