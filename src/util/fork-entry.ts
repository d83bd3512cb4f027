/**
 * Starts a module as a child process with an IPC channel. Under tsx (sources run directly, as in
 * tests) a child does not inherit the TypeScript loader, so it registers tsx before the entry loads.
 * Child processes rather than worker threads: onnxruntime-node's native addon can abort the whole
 * process when a worker thread that loaded it is torn down; a child dies alone.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';

/** Forks `entry` (a .js or .ts file); typed arrays cross the channel as binary. */
export function forkEntry(entry: string): ChildProcess {
  return fork(entry, [], {
    serialization: 'advanced',
    // tsx as this package resolves it, so the child starts from any working directory.
    execArgv: path.extname(entry) === '.ts' ? ['--import', import.meta.resolve('tsx')] : [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}
