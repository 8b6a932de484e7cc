/**
 * Options of the end-to-end benchmark (`loom bench`, `npm run bench -- e2e`), validated from the
 * strings a command line gives. Bad input is a LoomError `BENCH_BAD_ARGUMENT` naming the option.
 */
import { LoomError } from '@loom/common';

export const WORKLOADS = ['create', 'read', 'transfer', 'mixed'] as const;
export type Workload = (typeof WORKLOADS)[number];

export interface BenchOptions {
  readonly workload: Workload;
  /** Transactions in flight, over all workers (closed loop). */
  readonly concurrency: number;
  /** Worker client processes sharing the concurrency. */
  readonly workers: number;
  /** Measured seconds, after the warm-up. */
  readonly durationS: number;
  readonly warmupS: number;
  /** Assets created before the warm-up for read/transfer/mixed. */
  readonly pool: number;
  /** Longest the pool creation may take, seconds; the run continues with what was created. */
  readonly poolTimeoutS: number;
  /** network-config file. */
  readonly config: string;
  /** Data directory override (as `loom network --data`). */
  readonly data: string | undefined;
  /** Use a network already up from this config instead of starting one. */
  readonly attach: boolean;
  /** Leave a network the bench started running afterwards. */
  readonly keep: boolean;
  /** Directory for the JSON and HTML reports. */
  readonly out: string;
  readonly channel: string | undefined;
  readonly chaincode: string;
}

export const DEFAULTS = {
  workload: 'create' as Workload,
  concurrency: 64,
  durationS: 30,
  warmupS: 10,
  poolTimeoutS: 300,
  config: 'network-config/default.yaml',
  out: 'bench/results',
  chaincode: 'basic',
};

/** Pool size when none is given: none for create, 1,000 assets to read, 10,000 to transfer. */
export function defaultPool(w: Workload): number {
  return w === 'create' ? 0 : w === 'read' ? 1_000 : 10_000;
}

export type RawBenchOptions = Partial<Record<keyof BenchOptions, string | boolean | undefined>>;

const bad = (option: string, message: string) =>
  new LoomError('BENCH_BAD_ARGUMENT', `--${option}: ${message}`, { httpStatus: 400, details: { option } });

function int(raw: RawBenchOptions, key: keyof BenchOptions, flag: string, dflt: number, min: number, max: number) {
  const v = raw[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || !/^\d+$/.test(v.trim())) throw bad(flag, `expected a whole number, got '${String(v)}'`);
  const n = Number(v);
  if (n < min || n > max) throw bad(flag, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function str(raw: RawBenchOptions, key: keyof BenchOptions, flag: string): string | undefined {
  const v = raw[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.trim() === '') throw bad(flag, 'expected a value');
  return v;
}

export function parseBenchOptions(raw: RawBenchOptions): BenchOptions {
  const w = raw.workload ?? DEFAULTS.workload;
  if (typeof w !== 'string' || !(WORKLOADS as readonly string[]).includes(w))
    throw bad('workload', `expected one of ${WORKLOADS.join(', ')}, got '${String(w)}'`);
  const workload = w as Workload;
  const concurrency = int(raw, 'concurrency', 'concurrency', DEFAULTS.concurrency, 1, 4096);
  const workers = int(raw, 'workers', 'workers', Math.min(concurrency, 4), 1, 64);
  if (workers > concurrency)
    throw bad('workers', `more workers (${workers}) than transactions in flight (${concurrency})`);
  return {
    workload,
    concurrency,
    workers,
    durationS: int(raw, 'durationS', 'duration', DEFAULTS.durationS, 1, 3600),
    warmupS: int(raw, 'warmupS', 'warmup', DEFAULTS.warmupS, 0, 600),
    pool: int(raw, 'pool', 'pool', defaultPool(workload), workload === 'create' ? 0 : 1, 1_000_000),
    poolTimeoutS: int(raw, 'poolTimeoutS', 'pool-timeout', DEFAULTS.poolTimeoutS, 1, 3600),
    config: str(raw, 'config', 'config') ?? DEFAULTS.config,
    data: str(raw, 'data', 'data'),
    attach: raw.attach === true,
    keep: raw.keep === true,
    out: str(raw, 'out', 'out') ?? DEFAULTS.out,
    channel: str(raw, 'channel', 'channel'),
    chaincode: str(raw, 'chaincode', 'chaincode') ?? DEFAULTS.chaincode,
  };
}

/** Command-line help lines shared by `loom bench --help` and `npm run bench -- e2e --help`. */
export const OPTION_HELP: readonly [flag: string, description: string][] = [
  ['-w, --workload <name>', `create | read | transfer | mixed (default ${DEFAULTS.workload})`],
  ['-C, --concurrency <n>', `transactions in flight, closed loop (default ${DEFAULTS.concurrency})`],
  ['--workers <n>', 'client worker processes sharing the load (default min(concurrency, 4))'],
  ['--duration <s>', `measured seconds (default ${DEFAULTS.durationS})`],
  ['--warmup <s>', `warm-up seconds, not measured (default ${DEFAULTS.warmupS})`],
  ['--pool <n>', 'assets created before the warm-up (read 1000, transfer/mixed 10000)'],
  ['--pool-timeout <s>', `longest the pool creation may take (default ${DEFAULTS.poolTimeoutS})`],
  ['-c, --config <file>', `network-config (default ${DEFAULTS.config})`],
  ['-d, --data <dir>', 'data directory (overrides the config)'],
  ['--attach', 'use the network already up from the config instead of starting one'],
  ['--keep', 'leave the network the bench started running'],
  ['--out <dir>', `where the JSON and HTML reports go (default ${DEFAULTS.out})`],
  ['--channel <name>', "channel (default: the chaincode's channel in the config)"],
  ['--chaincode <name>', `chaincode (default ${DEFAULTS.chaincode}; must be the basic asset-transfer one)`],
];
