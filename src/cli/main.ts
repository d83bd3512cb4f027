#!/usr/bin/env node
/**
 * Entry point of the `ghn` command. Heavy commands first re-run themselves with huge pages for
 * malloc (see huge-pages.ts); the program itself (and its large imports) loads only in the process
 * that runs the command.
 */
import { relaunchWithHugePages, wantsHugePagesRelaunch } from './huge-pages.js';

const exitCode = wantsHugePagesRelaunch(process.argv, process.env) ? await relaunchWithHugePages() : null;
if (exitCode !== null) process.exitCode = exitCode;
else await import('./program.js');
