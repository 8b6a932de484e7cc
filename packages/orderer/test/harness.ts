/**
 * Runs real orderer processes (`node packages/orderer/dist/main.js --config …`, or LOOM_ORDERER_BIN)
 * on 127.0.0.1 ports chosen at run time, and talks to them over HTTP. Every wait is bounded.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeMspDir } from '@loom/common/testing/index';
import type { Endpoint, Network } from './fixtures.js';
import { splitFrames } from './fixtures.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const ORDERER_BIN = process.env.LOOM_ORDERER_BIN ?? join(repoRoot, 'packages/orderer/dist/main.js');

// The kernel may hand the same ephemeral port to two bind(0) calls in a row once the first is
// closed, so ports given out by this process are remembered and never given twice.
const handedOut = new Set<number>();

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await probePort();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no unused free port found after 50 attempts');
}

function probePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 15_000,
  everyMs = 50,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`,
  );
}

export interface OrdererProcess {
  readonly index: number;
  readonly id: string;
  readonly dir: string;
  readonly port: number;
  readonly adminPort: number;
  readonly raftPort: number;
  readonly operationsPort: number;
  readonly publicUrl: string;
  readonly adminUrl: string;
  readonly operationsUrl: string;
  child: ChildProcess | undefined;
  start(): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface ClusterOptions {
  readonly root: string;
  readonly snapshotIntervalEntries?: number;
  readonly logSpec?: string;
}

export async function prepareCluster(
  net: Network,
  opts: ClusterOptions,
): Promise<{ procs: OrdererProcess[]; endpoints: Endpoint[] }> {
  const procs: OrdererProcess[] = [];
  for (const [i, o] of net.orderers.entries()) {
    const [port, adminPort, raftPort, operationsPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ] as [number, number, number, number];
    const dir = join(opts.root, o.consenterId);
    await mkdir(dir, { recursive: true });
    await writeMspDir(join(dir, 'msp'), net.ordererOrgMsp, o);
    const yaml = [
      `id: ${o.consenterId}`,
      `mspId: ${net.ordererMspId}`,
      'mspDir: ./msp',
      'dataDir: ./data',
      'host: 127.0.0.1',
      `port: ${port}`,
      `adminPort: ${adminPort}`,
      `raftPort: ${raftPort}`,
      `operationsPort: ${operationsPort}`,
      `logSpec: ${opts.logSpec ?? 'info'}`,
      'submitTimeoutMs: 4000',
      'raft:',
      '  tickMs: 50',
      '  electionTick: 12',
      '  heartbeatTick: 1',
      `  snapshotIntervalEntries: ${opts.snapshotIntervalEntries ?? 1000}`,
      '',
    ].join('\n');
    await writeFile(join(dir, 'orderer.yaml'), yaml);
    const proc: OrdererProcess = {
      index: i,
      id: o.consenterId,
      dir,
      port,
      adminPort,
      raftPort,
      operationsPort,
      publicUrl: `http://127.0.0.1:${port}`,
      adminUrl: `http://127.0.0.1:${adminPort}`,
      operationsUrl: `http://127.0.0.1:${operationsPort}`,
      child: undefined,
      async start() {
        const log = createWriteStream(join(dir, 'orderer.log'), { flags: 'a' });
        // LOOM_ORDERER_NODE_ARGS: extra node flags for the orderers, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
        const nodeArgs = (process.env.LOOM_ORDERER_NODE_ARGS ?? '').split(' ').filter(Boolean);
        const child = spawn(process.execPath, [...nodeArgs, ORDERER_BIN, '--config', join(dir, 'orderer.yaml')], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        child.stdout?.pipe(log);
        child.stderr?.pipe(log);
        proc.child = child;
        await until(
          `${o.consenterId} to listen`,
          async () => {
            if (child.exitCode !== null) {
              let tail = '';
              try {
                tail = readFileSync(join(dir, 'orderer.log'), 'utf8').trim().split('\n').slice(-5).join(' | ');
              } catch {
                // no log written
              }
              throw new Error(`${o.consenterId} exited with ${child.exitCode}: ${tail}`);
            }
            const r = await fetch(`${proc.adminUrl}/participation/v1/channels`);
            return r.ok;
          },
          // Loading the node's modules alone can take tens of seconds on a loaded machine.
          Number(process.env.LOOM_ORDERER_START_TIMEOUT_MS ?? 60_000),
          100,
        );
      },
      async kill(signal: NodeJS.Signals = 'SIGKILL') {
        const child = proc.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill(signal);
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        proc.child = undefined;
      },
    };
    procs.push(proc);
  }
  return { procs, endpoints: procs.map((p) => ({ host: '127.0.0.1', port: p.port, raftPort: p.raftPort })) };
}

export interface ChannelInfoBody {
  name: string;
  status: string;
  consensusRelation: string;
  height: number;
  leader: string;
  term: number;
}

export async function channelInfo(p: OrdererProcess, channel: string): Promise<ChannelInfoBody> {
  const r = await fetch(`${p.adminUrl}/participation/v1/channels/${channel}`, { signal: AbortSignal.timeout(2000) });
  if (!r.ok) throw new Error(`info ${r.status}`);
  return (await r.json()) as ChannelInfoBody;
}

export async function joinChannel(p: OrdererProcess, block: Uint8Array): Promise<Response> {
  return fetch(`${p.adminUrl}/participation/v1/channels`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: block,
    signal: AbortSignal.timeout(10_000),
  });
}

export interface BroadcastResult {
  status: number;
  body: { code?: string; message?: string; status?: number; blockNumber?: number; txIndex?: number };
  retryAfter: string | null;
}

export async function broadcast(
  p: OrdererProcess,
  channel: string,
  env: Uint8Array,
  timeoutMs = 15_000,
): Promise<BroadcastResult> {
  const r = await fetch(`${p.publicUrl}/v1/channels/${channel}/broadcast`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: env,
    signal: AbortSignal.timeout(timeoutMs),
  });
  return {
    status: r.status,
    body: (await r.json()) as BroadcastResult['body'],
    retryAfter: r.headers.get('retry-after'),
  };
}

/** A finite deliver request; returns the encoded blocks. */
export async function deliver(
  p: OrdererProcess,
  channel: string,
  seekEnv: Uint8Array,
  timeoutMs = 15_000,
): Promise<Uint8Array[]> {
  const r = await fetch(`${p.publicUrl}/v1/channels/${channel}/deliver`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: seekEnv,
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!r.ok) throw new Error(`deliver ${r.status}: ${await r.text()}`);
  return splitFrames(new Uint8Array(await r.arrayBuffer()));
}

/** Runs `tasks` with at most `n` in flight. */
export async function pool<T>(
  items: readonly T[],
  n: number,
  task: (item: T, i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await task(items[i]!, i);
      }
    }),
  );
}

/**
 * Broadcasts until acknowledged, moving to the next live orderer after a 503 or a connection error
 * (the same bytes each time: the orderers answer a duplicate with where it already is).
 */
export async function submitWithRetry(
  procs: readonly OrdererProcess[],
  channel: string,
  env: Uint8Array,
  first: number,
  deadlineMs = 30_000,
): Promise<{ blockNumber: number; txIndex: number }> {
  const end = Date.now() + deadlineMs;
  for (let attempt = 0; Date.now() < end; attempt++) {
    const p = procs[(first + attempt) % procs.length]!;
    if (!p.child) continue;
    let r: BroadcastResult | undefined;
    try {
      r = await broadcast(p, channel, env, 10_000);
    } catch {
      // Connection refused or reset: the node is down or going down.
    }
    if (r?.status === 200) return { blockNumber: r.body.blockNumber!, txIndex: r.body.txIndex! };
    if (r && r.status !== 503) throw new Error(`unexpected ${r.status} ${JSON.stringify(r.body)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error('envelope was never acknowledged');
}

/** The leader all `candidates` agree on (and that is one of them). */
export async function agreedLeader(
  candidates: readonly OrdererProcess[],
  channel: string,
  timeoutMs = 15_000,
  exclude = '',
): Promise<string> {
  return until(
    'an agreed leader',
    async () => {
      const infos = await Promise.all(candidates.map((p) => channelInfo(p, channel).catch(() => undefined)));
      const l = infos[0]?.leader;
      return l && l !== exclude && infos.every((i) => i?.leader === l) && candidates.some((p) => p.id === l)
        ? l
        : undefined;
    },
    timeoutMs,
    25,
  );
}
