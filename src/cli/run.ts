/** How every command ends: one line on stderr and an exit code, never a stack trace for user errors. */
import { GhnError } from '../errors.js';

export function exitWith(code: number, message: string): void {
  process.stderr.write(`ghn: ${message}\n`);
  process.exitCode = code;
}

export function reportError(err: unknown): void {
  if (err instanceof GhnError) return exitWith(err.exitCode, err.message);
  const message = err instanceof Error ? err.message : String(err);
  exitWith(70, `internal error: ${message}${process.env.GHN_DEBUG ? `\n${(err as Error)?.stack ?? ''}` : ' (set GHN_DEBUG=1 for details)'}`);
}
