/**
 * Progress of long work (training, fine-tuning, benchmarks) on stderr: a redrawn bar with the time
 * left on a terminal; plain lines otherwise (logs, CI), each with the time spent and left.
 */
import cliProgress from 'cli-progress';

export interface ProgressBar {
  update(done: number, fields: Record<string, string>): void;
  stop(): void;
}

export interface ProgressOptions {
  /** Default: whether stderr is a terminal. */
  tty?: boolean;
  /** Where plain lines go (default stderr). */
  write?: (line: string) => void;
  /** Milliseconds clock (default Date.now). */
  now?: () => number;
}

/** A plain line at least every 10% of the work, and at least every 30 s (a --minutes run may stop far short of its total). */
const PLAIN_LINE_FRACTION = 0.1;
const PLAIN_LINE_MS = 30_000;

/** 42s, 3m05s, 2h07m. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function plainLines(total: number, label: string, options: ProgressOptions): ProgressBar {
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const now = options.now ?? Date.now;
  const started = now();
  let nextDone = 0;
  let nextTime = started;
  // A resumed run's first update is far from 0: its rate counts only the work done here.
  let firstDone: number | undefined;
  return {
    update(done, fields) {
      const t = now();
      firstDone ??= Math.max(0, done - 1);
      if (done < nextDone && t < nextTime && done !== total) return;
      nextDone = done + Math.max(1, Math.floor(total * PLAIN_LINE_FRACTION));
      nextTime = t + PLAIN_LINE_MS;
      const elapsed = (t - started) / 1000;
      const eta = done > firstDone ? formatDuration((elapsed / (done - firstDone)) * (total - done)) : '?';
      const rest = Object.values(fields).some((v) => v !== '') ? ` ${Object.entries(fields).filter(([, v]) => v !== '').map(([k, v]) => `${k} ${v}`).join(' ')}` : '';
      write(`${label} ${done}/${total} (${Math.floor((100 * done) / total)}%, ${formatDuration(elapsed)} elapsed, ETA ${eta})${rest}\n`);
    },
    stop() {},
  };
}

export function progressBar(total: number, label: string, fieldsFormat: string, options: ProgressOptions = {}): ProgressBar {
  if (!(options.tty ?? process.stderr.isTTY)) return plainLines(total, label, options);
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {value}/{total} ETA {eta_formatted} ${fieldsFormat}`, stream: process.stderr, hideCursor: true, barsize: 24, etaBuffer: 50 },
    cliProgress.Presets.shades_classic,
  );
  // Placeholders stay blank until the first update (instead of printing as "{loss}").
  bar.start(total, 0, Object.fromEntries([...fieldsFormat.matchAll(/\{(\w+)\}/g)].map((m) => [m[1], ''])));
  return { update: (done, fields) => bar.update(done, fields), stop: () => bar.stop() };
}
