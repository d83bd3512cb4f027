/**
 * The README's code blocks, sorted by what they are, for the tests that run them: the quick start
 * and the install commands (test/package.test.ts, in a fresh checkout and an empty project), the
 * Node API snippet (package.test.ts, against the installed package), the PyTorch, onnxruntime,
 * service and training blocks (test/readme.test.ts). A runnable block that fits none of the kinds is
 * an error, so every command and snippet in the README is run by a test. Also the helpers both tests
 * use to run commands as a user would.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface Block {
  lang: string;
  code: string;
  /** 1-based line of the opening fence. */
  line: number;
}

export type BlockKind = 'quickStart' | 'install' | 'pytorch' | 'onnxruntime' | 'nodeApi' | 'serve' | 'serveClient' | 'train' | 'tests';

/** Languages of blocks that are commands or code (untagged blocks are printed output or pictures). */
const RUNNABLE = new Set(['sh', 'bash', 'shell', 'console', 'js', 'javascript', 'mjs', 'ts', 'typescript', 'python', 'py']);

export function readmeBlocks(file = path.join(REPO, 'README.md')): Block[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    if (i >= lines.length) throw new Error(`README.md:${start + 1}: unterminated code block`);
    blocks.push({ lang: open[1]!, code: body.join('\n') + '\n', line: start + 1 });
  }
  return blocks;
}

function kindOf(block: Block, isFirstShell: boolean): BlockKind | null {
  const { lang, code } = block;
  if (['sh', 'bash', 'shell', 'console'].includes(lang)) {
    if (isFirstShell) return 'quickStart';
    if (code.trim() === 'npm test') return 'tests';
    if (/^npm install\b/m.test(code)) return 'install';
    if (/\bghn serve\b/.test(code)) return 'serve';
    if (/^curl\b/m.test(code)) return 'serveClient';
    if (/\bghn train\b/.test(code)) return 'train';
    return null;
  }
  if (['js', 'javascript', 'mjs'].includes(lang)) {
    if (/from 'ghn'/.test(code)) return 'nodeApi';
    if (/from 'onnxruntime-node'/.test(code)) return 'onnxruntime';
    return null;
  }
  if (['python', 'py'].includes(lang)) return 'pytorch';
  return null;
}

/** Every runnable block by kind; throws on a block no test runs, on a kind twice, or on a kind missing. */
export function classifiedBlocks(blocks = readmeBlocks()): Record<BlockKind, Block> {
  const out: Partial<Record<BlockKind, Block>> = {};
  let seenShell = false;
  for (const block of blocks) {
    if (!RUNNABLE.has(block.lang)) continue;
    const isShell = ['sh', 'bash', 'shell', 'console'].includes(block.lang);
    const kind = kindOf(block, isShell && !seenShell);
    if (isShell) seenShell = true;
    if (!kind) throw new Error(`README.md:${block.line}: a \`\`\`${block.lang} block that no test runs (test/readme-blocks.ts sorts them)`);
    if (out[kind]) throw new Error(`README.md:${block.line}: a second ${kind} block (the first is at line ${out[kind]!.line})`);
    out[kind] = block;
  }
  const kinds: BlockKind[] = ['quickStart', 'install', 'pytorch', 'onnxruntime', 'nodeApi', 'serve', 'serveClient', 'train', 'tests'];
  const missing = kinds.filter((k) => !out[k]);
  if (missing.length) throw new Error(`README.md has no ${missing.join(', ')} block`);
  return out as Record<BlockKind, Block>;
}

/**
 * The environment of a user's shell: without the npm_* variables `npm test` exported (they would
 * point nested npm commands at this repository), offline (dependencies come from the npm cache that
 * `npm ci` filled; nothing may be fetched, and `npx` must never fetch a package named ghn), no audit,
 * fund or update notices.
 */
export function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'INIT_CWD') env[k] = v;
  return {
    ...env, npm_config_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false',
    npm_config_update_notifier: 'false', ...extra,
  };
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface Started {
  /** Resolves when the command has exited and its output pipes have closed. */
  done: Promise<RunResult>;
  /** SIGTERM to the command's whole process group. */
  kill(): void;
}

/**
 * Starts a command in its own process group; on time-out, and after it exits, the whole group gets
 * SIGTERM, so nothing it started in the background (a server) outlives it.
 */
export function start(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Started {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? userEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const kill = () => {
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch { /* the group is gone */ }
  };
  const done = new Promise<RunResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${opts.timeoutMs ?? 120_000} ms]`;
      kill();
    }, opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      kill();
      resolve({ status, stdout, stderr });
    });
  });
  return { done, kill };
}

/** Runs a command (see start) and waits for it. */
export function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<RunResult> {
  return start(cmd, args, opts).done;
}

/** Runs a README shell block with bash, stopping at the first failing command. */
export function runShellBlock(code: string, cwd: string, env?: NodeJS.ProcessEnv, timeoutMs?: number): Promise<RunResult> {
  return startShellBlock(code, cwd, env, timeoutMs).done;
}

export function startShellBlock(code: string, cwd: string, env?: NodeJS.ProcessEnv, timeoutMs?: number): Started {
  return start('bash', ['-e', '-o', 'pipefail', '-c', code], { cwd, env, timeoutMs });
}

export function describeRun(r: RunResult): string {
  return `exit ${r.status}\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`;
}

/** Asserts with onnx.checker (python3-onnx) that every file is a valid ONNX model; returns the error text or ''. */
export async function onnxCheckErrors(files: string[]): Promise<string> {
  const r = await run('/usr/bin/python3', ['-c',
    'import sys, onnx\nfor f in sys.argv[1:]:\n    onnx.checker.check_model(onnx.load(f))\n', ...files], { cwd: REPO, env: process.env, timeoutMs: 60_000 });
  return r.status === 0 ? '' : describeRun(r);
}
