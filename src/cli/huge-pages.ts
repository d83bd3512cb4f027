/**
 * Heavy commands re-run themselves with glibc's malloc using transparent huge pages.
 *
 * `ghn finetune` and `ghn train` allocate and first touch hundreds of MB; `ghn predict` (measured
 * when it did so) allocated ~700 MB in ~2 MB–100 MB blocks (predicted weights,
 * float64 work arrays, onnxruntime buffers, the written model). On Linux each fresh 4 KiB page
 * costs a page fault, and on a virtual machine one costs ~7–10 µs: ~170,000 faults, over a second
 * of CPU, for ResNet-50. Where the kernel grants huge pages only on request (transparent_hugepage
 * 'madvise', the common default), glibc ≥ 2.35 requests them for its large blocks when started
 * with GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (one fault per 2 MiB: ~45,000 faults in all). A
 * tunable is read only at process start, hence the re-run (one node start-up, ~0.1 s).
 * GHN_HUGE_PAGES=0 turns it off.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

const TUNABLE = 'glibc.malloc.hugetlb=1';
/**
 * Commands that allocate hundreds of MB. Not `serve`: a long-running server must stay the
 * process its supervisor started. Not `predict` any more: since its defaults changed (no
 * post-processing, fewer float64 work arrays) huge pages cost it more than the faults they save —
 * ResNet-50, paired whole-process runs on the shared 2-core machine: 1.57 s wall, 0.34 s system,
 * 509 MiB without vs 2.32 s, 0.94 s system, 615 MiB with (the kernel zeroes whole 2 MiB pages that
 * onnxruntime's and V8's allocations only partly use), and the re-run is one more node start-up.
 */
const HEAVY_COMMANDS = new Set(['finetune', 'train', 'eval']);
const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Whether this process should re-run itself with the tunable set. */
export function wantsHugePagesRelaunch(argv: readonly string[], env: NodeJS.ProcessEnv): boolean {
  if (process.platform !== 'linux' || env.GHN_HUGE_PAGES === '0') return false;
  if ((env.GLIBC_TUNABLES ?? '').includes('glibc.malloc.hugetlb')) return false; // already set (or relaunched)
  if (!argv.slice(2).some((arg) => HEAVY_COMMANDS.has(arg))) return false;
  if (!thpOnRequest()) return false;
  const glibc = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
  const [major = 0, minor = 0] = (glibc ?? '').split('.').map(Number);
  return major > 2 || (major === 2 && minor >= 35);
}

/** Transparent huge pages in 'madvise' mode: granted to memory that asks ('always' needs no tunable). */
function thpOnRequest(): boolean {
  try {
    return fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').includes('[madvise]');
  } catch {
    return false;
  }
}

/**
 * Runs this command again in a child process with the tunable set, forwarding termination signals,
 * and resolves to the exit code to end with; null when it could not start (then run here).
 */
export function relaunchWithHugePages(): Promise<number | null> {
  const env = { ...process.env, GLIBC_TUNABLES: [process.env.GLIBC_TUNABLES, TUNABLE].filter(Boolean).join(':') };
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
  return new Promise((resolve) => {
    child.once('error', () => resolve(null));
    child.once('exit', (code, signal) => {
      for (const s of FORWARDED_SIGNALS) process.off(s, forward);
      resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 1));
    });
  });
}
