#!/usr/bin/env node
import { runCli } from '../index.js';

runCli(process.argv).catch((e: unknown) => {
  const err = e as { code?: string; message?: string };
  process.stderr.write(`loom: ${err.code ? `${err.code}: ` : ''}${err.message ?? String(e)}\n`);
  process.exitCode = 1;
});
