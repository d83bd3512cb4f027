/** The ghn command line: commands, options, and how errors end a command. Started by main.ts. */
import { Command, CommanderError } from 'commander';
import { GhnError } from '../errors.js';
import { parseWasmThreads } from '../engine/wasm-threads.js';
import { VERSION } from '../version.js';
import { registerDistill } from './distill.js';
import { registerEnsemble } from './ensemble.js';
import { registerFinetune } from './finetune.js';
import { registerGhnCommands } from './ghn-commands.js';
import { registerInspect } from './inspect.js';
import { registerPredict } from './predict.js';
import { registerServe } from './serve.js';
import { reportError } from './run.js';

function oneLineUsageError(message: string): string {
  const text = message.replace(/^error: /, '').replace(/\((Did you mean)/, (_, d: string) => `(${d.toLowerCase()}`);
  return `ghn: ${text.split('\n').map((l) => l.trim()).filter(Boolean).join(' ')}`;
}

const program = new Command('ghn')
  .description('Graph HyperNetwork parameter predictor for ONNX models')
  .version(VERSION)
  .exitOverride()
  // commander's errors as one line, like every other error (`ghn: unknown option '--nosie' (did you mean --noise?)`).
  .configureOutput({ writeErr: (s) => process.stderr.write(s), outputError: (s, write) => write(`${oneLineUsageError(s)}\n`) })
  .option('--threads <n>', 'threads of the wasm backend (default 1, or GHN_WASM_THREADS; 2 helps only on an otherwise idle machine)');

// Through the environment so that the server's worker processes inherit it too.
program.hook('preAction', () => {
  const threads = program.opts<{ threads?: string }>().threads;
  if (threads !== undefined) process.env.GHN_WASM_THREADS = String(parseWasmThreads(threads, '--threads'));
});

registerInspect(program);
registerFinetune(program);
registerGhnCommands(program);
registerPredict(program);
registerEnsemble(program);
registerDistill(program);
registerServe(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // commander already printed its message (or help/version, which exit 0)
    process.exitCode = err.exitCode === 0 ? 0 : new GhnError('usage', err.message).exitCode;
  } else {
    reportError(err);
  }
}

// A command that has finished ends the process here rather than letting Node tear down what it
// leaves (ResNet-50's prediction: hundreds of MB, ~25 ms); `serve` returns while its server runs.
if (program.args[0] !== 'serve') {
  for (const stream of [process.stdout, process.stderr]) await new Promise((flushed) => stream.write('', flushed));
  process.exit();
}
