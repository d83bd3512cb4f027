/** A progress bar on stderr for long work (training, evaluation); silent when stderr is not a TTY. */
import cliProgress from 'cli-progress';

export interface ProgressBar {
  update(done: number, fields: Record<string, string>): void;
  stop(): void;
}

export function progressBar(total: number, label: string, fieldsFormat: string): ProgressBar {
  if (!process.stderr.isTTY) {
    // Logs and CI: a line every 10% instead of a redrawn bar.
    let next = 0;
    return {
      update(done, fields) {
        if (done < next && done !== total) return;
        next = done + Math.max(1, Math.floor(total / 10));
        process.stderr.write(`${label} ${done}/${total} ${Object.entries(fields).map(([k, v]) => `${k} ${v}`).join(' ')}\n`);
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {value}/{total} ${fieldsFormat}`, stream: process.stderr, hideCursor: true, barsize: 24 },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return { update: (done, fields) => bar.update(done, fields), stop: () => bar.stop() };
}
