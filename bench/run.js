#!/usr/bin/env node
// Runs one benchmark: `npm run bench -- <name> [args...]` → bench/<name>.js, whose exported
// `run(args)` prints its numbers. Unknown or missing name: lists the benchmarks and exits 2.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

function available() {
  return readdirSync(here)
    .filter((f) => f.endsWith('.js') && f !== 'run.js')
    .map((f) => f.slice(0, -3))
    .sort();
}

const [name, ...args] = process.argv.slice(2);
const names = available();
if (!name || !names.includes(name)) {
  if (name) console.error(`unknown benchmark: ${name}`);
  console.error(`usage: npm run bench -- <name> [args...]\navailable: ${names.join(', ') || '(none)'}`);
  process.exit(2);
}

const mod = await import(pathToFileURL(join(here, `${name}.js`)).href);
if (typeof mod.run !== 'function') {
  console.error(`bench/${name}.js does not export run(args)`);
  process.exit(2);
}
await mod.run(args);
