/**
 * `loom bench`: the end-to-end benchmark (also `npm run bench -- e2e`). Brings up (or attaches to)
 * a network, drives a closed-loop load from worker client processes, prints the figures and writes
 * JSON and HTML reports. The driver is in ../bench/.
 */
import type { Command } from 'commander';
import { OPTION_HELP, parseBenchOptions, type RawBenchOptions } from '../bench/options.js';
import { runBench } from '../bench/run.js';
import { progressPrinter } from './network.js';

/** Commander's option names → the benchmark's option keys. */
const KEYS: Record<string, keyof RawBenchOptions> = {
  workload: 'workload',
  concurrency: 'concurrency',
  workers: 'workers',
  duration: 'durationS',
  warmup: 'warmupS',
  pool: 'pool',
  poolTimeout: 'poolTimeoutS',
  config: 'config',
  data: 'data',
  attach: 'attach',
  keep: 'keep',
  out: 'out',
  channel: 'channel',
  chaincode: 'chaincode',
};

export function registerBenchCommand(program: Command): void {
  const cmd = program
    .command('bench')
    .description('end-to-end benchmark: closed-loop load on a local network, with a JSON and HTML report');
  for (const [flags, description] of OPTION_HELP) cmd.option(flags, description);
  cmd.action(async (opts: Record<string, string | boolean | undefined>) => {
    const raw: RawBenchOptions = {};
    for (const [k, v] of Object.entries(opts)) if (KEYS[k]) raw[KEYS[k]] = v;
    const options = parseBenchOptions(raw);
    const json = Boolean(program.opts().json);
    const result = await runBench(options, progressPrinter(json), (text) => {
      if (!json) process.stdout.write(`${text}\n`);
    });
    if (json) process.stdout.write(`${JSON.stringify(result.report)}\n`);
    // Idle keep-alive sockets must not hold the command open.
    process.exit(process.exitCode ?? 0);
  });
}
