/**
 * Helpers shared by the e2e suites (test/e2e/*.test.ts): a network-config shifted to a suite's own
 * ports and data directory, the `loom` CLI run as a child process, a launched network brought up and
 * always brought down again (its recorded processes killed by process group when `network down`
 * fails), gateways of an org's users, bounded polling, peer heights, metrics, and peer processes a
 * suite stops and starts itself. Each suite keeps its own ports, timeouts and assertions; these
 * helpers take them as parameters.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Gateway, GatewayError } from '@loom/client';
import { bytesEqual, decodeBlock, type NetworkConfig, toHex } from '@loom/common';
import { sha256 } from '@loom/common/crypto/hash';
import { expect } from 'vitest';
import { findOrg, gatewayFor, type UserName } from '../../packages/cli/src/network/gateway.js';
import { httpRequest } from '../../packages/cli/src/network/http.js';
import {
  channelConfig,
  createNetwork,
  genesisBlock,
  type Network as OrdererTestNetwork,
  seekEnvelope,
} from '../../packages/orderer/test/fixtures.js';
import {
  agreedLeader,
  deliver,
  joinChannel,
  type OrdererProcess,
  prepareCluster,
} from '../../packages/orderer/test/harness.js';

/** The repository root (with a trailing slash). */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The built CLI; suites skip themselves when it is missing (`npm run build`). */
export const LOOM = join(ROOT, 'packages/cli/dist/bin/loom.js');
/** The built peer, for suites that start a peer process themselves. */
export const PEER_MAIN = join(ROOT, 'packages/peer/dist/main.js');

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dec = new TextDecoder();
/** A transaction's result: the contract's JSON serializer encodes what a function returns as JSON. */
export const parseResult = (bytes: Uint8Array): unknown => JSON.parse(dec.decode(bytes));

// ---------------------------------------------------------------------------------------------
// Network-configs

/** Every `port:`/`…Port:` value of a network-config moved by `offset`. */
export function shiftPorts(text: string, offset: number): string {
  return text.replace(/(port|Port): (\d+)/g, (_, k: string, p: string) => `${k}: ${Number(p) + offset}`);
}

/** One entry of a network-config's `chaincodes:` list (version "1.0", sequence 1). */
export interface ChaincodeEntry {
  name: string;
  path: string;
  endorsementPolicy: string;
  channel?: string;
  collections?: string;
}

export function chaincodeYaml(c: ChaincodeEntry): string {
  return [
    `  - name: ${c.name}`,
    `    path: ${c.path}`,
    `    channel: ${c.channel ?? 'mychannel'}`,
    '    version: "1.0"',
    '    sequence: 1',
    `    endorsementPolicy: "${c.endorsementPolicy}"`,
    ...(c.collections ? [`    collections: ${c.collections}`] : []),
    '',
  ].join('\n');
}

export interface NetworkConfigOptions {
  /** Added to every port of the default network-config (after `edit`). */
  offset: number;
  /** The network's data directory. */
  dataDir: string;
  /** Replaces the network's name `loom`. */
  name?: string;
  /** Edits the default network-config's text before its ports are shifted (ports as in the default). */
  edit?: (text: string) => string;
  /** Replaces the `chaincodes:` list; without it, `basic` is deployed from its absolute path. */
  chaincodes?: readonly ChaincodeEntry[];
  /** Edits the finished text (ports shifted) before it is written. */
  finish?: (text: string) => string;
}

/** network-config/default.yaml moved to a suite's ports and data directory, as text. */
export function networkConfigText(o: NetworkConfigOptions): string {
  let text = readFileSync(join(ROOT, 'network-config/default.yaml'), 'utf8');
  if (o.edit) text = o.edit(text);
  text = shiftPorts(text, o.offset).replace(/^dataDir: .*$/m, `dataDir: ${o.dataDir}`);
  if (o.name) text = text.replace(/^name: loom$/m, `name: ${o.name}`);
  text = o.chaincodes
    ? text.replace(/\nchaincodes:[\s\S]*$/, `\nchaincodes:\n${o.chaincodes.map(chaincodeYaml).join('')}`)
    : text.replace(/path: \.\.\/chaincode\/basic/, `path: ${join(ROOT, 'chaincode/basic')}`);
  return o.finish ? o.finish(text) : text;
}

/** Writes `networkConfigText(o)` to `file`; returns `file`. */
export function writeNetworkConfig(file: string, o: NetworkConfigOptions): string {
  writeFileSync(file, networkConfigText(o));
  return file;
}

/** Adds Org1's peer1 (7061/7161/7062/9442, before shifting) to the default network-config. */
export function withOrg1Peer1(text: string): string {
  return text.replace(
    / {6}# More peers: copy the entry.*\n/,
    `      - name: peer1
        host: 127.0.0.1
        port: 7061
        p2pPort: 7161
        chaincodePort: 7062
        operationsPort: 9442
`,
  );
}

/**
 * Adds Org3 (a CA and a peer0 on the given ports, before shifting) to the default network-config;
 * `inChannel` also lists it among mychannel's organizations.
 */
export function withOrg3(
  text: string,
  o: {
    caPort: number;
    port: number;
    p2pPort: number;
    chaincodePort: number;
    operationsPort: number;
    inChannel: boolean;
  },
): string {
  text = text.replace(
    /\nordererOrganization:/,
    `
  - mspId: Org3MSP
    name: Org3
    domain: org3.example.com
    ca:
      host: 127.0.0.1
      port: ${o.caPort}
      admin: { user: admin, secret: adminpw }
    peers:
      - name: peer0
        host: 127.0.0.1
        port: ${o.port}
        p2pPort: ${o.p2pPort}
        chaincodePort: ${o.chaincodePort}
        operationsPort: ${o.operationsPort}
    anchorPeers: [peer0]
    policies:
      Readers: "OR('Org3MSP.admin', 'Org3MSP.peer', 'Org3MSP.client')"
      Writers: "OR('Org3MSP.admin', 'Org3MSP.client')"
      Admins: "OR('Org3MSP.admin')"
      Endorsement: "OR('Org3MSP.peer')"

ordererOrganization:`,
  );
  return o.inChannel
    ? text.replace('organizations: [Org1MSP, Org2MSP]', 'organizations: [Org1MSP, Org2MSP, Org3MSP]')
    : text;
}

/** Org1 with peer0 and peer1, Org2, and Org3 (CA 7056, peer0 7071/7171/7072/9446), all in mychannel. */
export const withThreeOrgs = (text: string): string =>
  withOrg3(withOrg1Peer1(text), {
    caPort: 7056,
    port: 7071,
    p2pPort: 7171,
    chaincodePort: 7072,
    operationsPort: 9446,
    inChannel: true,
  });

/** The `private` sample chaincode: any one org's peer endorses; its collections (Org1, Org2) say who stores. */
export const PRIVATE_CHAINCODE: ChaincodeEntry = {
  name: 'private',
  path: join(ROOT, 'chaincode/private'),
  endorsementPolicy: "OR('Org1MSP.peer', 'Org2MSP.peer', 'Org3MSP.peer')",
  collections: join(ROOT, 'chaincode/private/collections_config.json'),
};

// ---------------------------------------------------------------------------------------------
// Child processes

export interface RunResult {
  code: number | null;
  /** stdout and stderr, interleaved as they arrived. */
  out: string;
  stdout: string;
}

/**
 * Runs `node ...args` in its own process group and collects its output; after `timeoutMs` the whole
 * group is killed (SIGKILL), so nothing it started outlives a hung command.
 */
export function runNode(args: readonly string[], timeoutMs: number, cwd = ROOT): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...args], { cwd, detached: true });
    let out = '';
    let stdout = '';
    child.stdout.on('data', (d) => {
      out += d;
      stdout += d;
    });
    child.stderr.on('data', (d) => (out += d));
    const t = setTimeout(() => killGroup(child.pid, 'SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out, stdout });
    });
  });
}

/** Runs the `loom` CLI (see `runNode`). */
export function runLoom(args: readonly string[], timeoutMs = 240_000, cwd = ROOT): Promise<RunResult> {
  return runNode([LOOM, ...args], timeoutMs, cwd);
}

/** Signals the process group of `pid`, or `pid` alone when it leads no group; quiet when gone. */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** The pid the launcher recorded for node `name` (pids.json in the data directory). */
export function recordedPid(dataDir: string, name: string): number | undefined {
  return readRecorded(dataDir).find((r) => r.name === name)?.pid;
}

function readRecorded(dataDir: string): { name: string; kind: string; pid: number }[] {
  try {
    return JSON.parse(readFileSync(join(dataDir, 'pids.json'), 'utf8')) as {
      name: string;
      kind: string;
      pid: number;
    }[];
  } catch {
    return [];
  }
}

/** Last resort when `network down` failed: SIGKILL every recorded process's group (chaincode included). */
export function killRecorded(dataDir: string): void {
  for (const r of readRecorded(dataDir)) killGroup(r.pid, 'SIGKILL');
}

/** SIGTERM, up to 15 s to exit (a clean stop ends the peer's chaincode processes), then SIGKILL. */
export async function stopPid(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 60; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(250);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
  await sleep(500);
}

/** A peer started from a launcher-written peer.yaml, in its own process group, logging to `logFile`. */
export function startPeer(configFile: string, name: string, logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [PEER_MAIN, '--config', configFile], {
    stdio: ['ignore', fd, fd],
    detached: true,
    env: { ...process.env, LOOM_NODE_NAME: name },
  });
  closeSync(fd);
  return child;
}

/** Stops processes a suite started itself: cleanly first, then their whole process group. */
export async function stopStarted(children: readonly ChildProcess[]): Promise<void> {
  for (const c of children) {
    if (c.pid !== undefined && c.exitCode === null) {
      await stopPid(c.pid);
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// A launched network

/**
 * A network started with `loom network up --detach` from `configFile`. `down()` (for afterAll) stops
 * it once it was launched, also after a failed or timed-out `up`; when `network down` fails it kills
 * the processes recorded in `dataDir` by process group.
 */
export class LaunchedNetwork {
  private launched = false;

  constructor(
    readonly configFile: string,
    readonly dataDir: string,
    /** Where the `loom` commands run. */
    readonly cwd = ROOT,
  ) {}

  /** `network up --detach`, whatever it answers (for suites that assert on it themselves). */
  async launch(timeoutMs: number): Promise<RunResult> {
    this.launched = true;
    return runLoom(['network', 'up', '--detach', '--config', this.configFile], timeoutMs, this.cwd);
  }

  /**
   * `network up --detach`; throws with its output when it fails, or when a chaincode of `deployed`
   * was not committed (`network up` reports a failed deployment and still exits 0).
   */
  async up(timeoutMs: number, deployed: readonly string[] = []): Promise<RunResult> {
    const r = await this.launch(timeoutMs);
    if (r.code !== 0) throw new Error(`network up failed (${r.code}):\n${r.out}`);
    for (const cc of deployed) {
      if (!new RegExp(`chaincode ${cc}: definition \\S+ sequence \\d+ committed`).test(r.out)) {
        throw new Error(`${cc} was not deployed:\n${r.out}`);
      }
    }
    return r;
  }

  /** `network down` if the network was launched; kills its recorded processes when that fails. */
  async down(timeoutMs = 60_000): Promise<void> {
    if (!this.launched) return;
    const r = await runLoom(['network', 'down', '--config', this.configFile], timeoutMs, this.cwd);
    if (r.code !== 0) {
      process.stderr.write(`network down failed (${r.code}): ${r.out}\n`);
      killRecorded(this.dataDir);
    }
  }
}

/** Gateways opened by a suite, all closed by `closeAll()` (afterAll). */
export class Gateways {
  private readonly open: Gateway[] = [];

  /**
   * A gateway for `user` of `mspId` on a peer (`peer`, default the first, of org `peerOf`, default
   * `mspId`).
   */
  async of(
    net: NetworkConfig,
    mspId: string,
    o: { user?: UserName; peer?: string; peerOf?: string; tlsRoots?: string[] } = {},
  ): Promise<Gateway> {
    const host = findOrg(net, o.peerOf ?? mspId);
    const peer = o.peer === undefined ? host.peers[0] : host.peers.find((p) => p.name === o.peer);
    if (!peer) throw new Error(`${host.mspId} has no peer ${o.peer ?? ''}`);
    const g = await gatewayFor(net, findOrg(net, mspId), o.user ?? 'User1', {
      peer,
      ...(o.tlsRoots ? { tlsRoots: o.tlsRoots } : {}),
    });
    this.open.push(g);
    return g;
  }

  /** Closes `g` with the others. */
  add(...g: Gateway[]): void {
    this.open.push(...g);
  }

  closeAll(): void {
    for (const g of this.open) g.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Waiting

export interface WaitOptions {
  /** Default 60 s. */
  timeoutMs?: number;
  /** Pause between attempts; default 500 ms. */
  intervalMs?: number;
  /** At most this many attempts; default as many as fit in the timeout. */
  maxTries?: number;
}

/**
 * Polls `f` until it returns something other than undefined or false (errors count as "not yet";
 * the last one is named if time runs out), bounded in time and in attempts.
 */
export async function waitFor<T>(
  what: string,
  f: () => Promise<T | undefined | false>,
  o: WaitOptions = {},
): Promise<T> {
  const timeoutMs = o.timeoutMs ?? 60_000;
  const intervalMs = o.intervalMs ?? 500;
  const maxTries = o.maxTries ?? Math.ceil(timeoutMs / intervalMs) + 1;
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; i < maxTries && Date.now() < end; i++) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** Waits (see `waitFor`) until `height()` is at least `atLeast`; the error names the last height. */
export async function waitForHeight(
  what: string,
  height: () => Promise<number>,
  atLeast: number,
  o: WaitOptions = {},
): Promise<void> {
  let last = -1;
  await waitFor(
    what,
    async () => {
      last = await height();
      return last >= atLeast ? true : undefined;
    },
    o,
  ).catch((e: Error) => {
    throw new Error(`${e.message} (at height ${last}, waiting for ${atLeast})`);
  });
}

/** The ledger height of the peer behind gateway `g`. */
export async function gatewayHeight(g: Gateway, channel = 'mychannel'): Promise<number> {
  return Number((await g.getNetwork(channel).getLedgerDigest()).digest.height);
}

/** GET `url` over TLS trusting `ca`; throws unless HTTP 200. */
export async function getOk(url: string, ca: string[], timeoutMs = 30_000): Promise<Buffer> {
  const r = await httpRequest(url, { ca, timeoutMs });
  if (r.status !== 200) throw new Error(`GET ${url}: HTTP ${r.status} ${r.body.toString().slice(0, 300)}`);
  return r.body;
}

/**
 * The height of `channel` on the peer at `peerUrl` (https://host:port); undefined when the peer
 * answers but not with 200 (e.g. not joined); throws when it cannot be reached.
 */
export async function peerHeight(
  peerUrl: string,
  ca: string[],
  o: { channel?: string; timeoutMs?: number } = {},
): Promise<number | undefined> {
  const r = await httpRequest(`${peerUrl}/v1/channels/${o.channel ?? 'mychannel'}/height`, {
    ca,
    ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
  });
  return r.status === 200 ? (JSON.parse(r.body.toString()) as { height: number }).height : undefined;
}

/** The sum of a Prometheus metric's samples in `text` whose labels include `labels`. */
export function sumMetric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** The GatewayError `p` (or `p()`) rejects with; fails the test when it resolves or throws anything else. */
export async function gatewayFailure(p: Promise<unknown> | (() => Promise<unknown>)): Promise<GatewayError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    if (e instanceof GatewayError) return e;
    throw new Error(`expected a GatewayError, got ${(e as Error)?.stack ?? e}`);
  }
  throw new Error('expected the call to fail, it succeeded');
}

// ---------------------------------------------------------------------------------------------
// Raft groups of real orderer processes (packages/orderer/test/harness.ts)

export interface OrdererGroupOptions {
  /** Prefix of the temporary directory. */
  prefix: string;
  nodes: number;
  channel: string;
  snapshotIntervalEntries: number;
  maxMessageCount: number;
  /** Start the processes one at a time (else all at once). */
  oneByOne: boolean;
  /** How long the nodes may take to agree on the first leader. */
  leaderTimeoutMs: number;
}

/**
 * A Raft group of real orderer processes on one channel. `cleanup()` (afterAll) kills every process
 * it started, also when `start` failed half-way, and removes its directory (kept with LOOM_KEEP_E2E=1).
 */
export class OrdererGroup {
  procs: OrdererProcess[] = [];
  private root = '';

  /** Creates the identities, starts the nodes, joins them to the channel; answers the first leader. */
  async start(
    o: OrdererGroupOptions,
  ): Promise<{ net: OrdererTestNetwork; config: ReturnType<typeof channelConfig>; leader: string }> {
    this.root = await mkdtemp(join(tmpdir(), o.prefix));
    const net = await createNetwork(o.nodes, o.channel);
    const cluster = await prepareCluster(net, {
      root: this.root,
      snapshotIntervalEntries: o.snapshotIntervalEntries,
      logSpec: 'info',
    });
    this.procs = cluster.procs;
    const config = channelConfig(net, cluster.endpoints, { maxMessageCount: o.maxMessageCount, batchTimeoutMs: 50 });
    if (o.oneByOne) for (const p of this.procs) await p.start();
    else await Promise.all(this.procs.map((p) => p.start()));
    const genesis = genesisBlock(net, config);
    for (const p of this.procs) expect((await joinChannel(p, genesis.bytes)).status).toBe(201);
    const leader = await agreedLeader(this.procs, o.channel, o.leaderTimeoutMs);
    return { net, config, leader };
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.kill('SIGKILL')));
    if (this.root && process.env.LOOM_KEEP_E2E !== '1') await rm(this.root, { recursive: true, force: true });
  }
}

/**
 * Blocks 0..height-1 of `channel` delivered by each of `procs`: every chain has `height` blocks with
 * the same headers as the first. Also answers how often each envelope (by sha256) is in a block
 * after the genesis block.
 */
export async function deliveredChains(
  net: OrdererTestNetwork,
  procs: readonly OrdererProcess[],
  channel: string,
  height: number,
  timeoutMs: number,
): Promise<{ chains: Uint8Array[][]; count: Map<string, number> }> {
  const seek = seekEnvelope(net.org1.client, channel, {
    start: { kind: 'oldest' },
    stop: { kind: 'specified', number: height - 1 },
    behavior: 'FAIL_IF_NOT_READY',
  });
  const chains = await Promise.all(procs.map((p) => deliver(p, channel, seek, timeoutMs)));
  for (const c of chains) expect(c).toHaveLength(height);
  const count = new Map<string, number>();
  for (let n = 0; n < height; n++) {
    const b = decodeBlock(chains[0]![n]!);
    for (const other of chains.slice(1)) expect(bytesEqual(decodeBlock(other[n]!).header, b.header)).toBe(true);
    if (n > 0) for (const e of b.data) count.set(toHex(sha256(e)), (count.get(toHex(sha256(e))) ?? 0) + 1);
  }
  return { chains, count };
}

/** Every envelope is in exactly one block (per `count`), at the place `acks` says it was acknowledged. */
export function expectOrderedOnce(
  chain: readonly Uint8Array[],
  count: ReadonlyMap<string, number>,
  envs: readonly Uint8Array[],
  acks: (i: number) => { blockNumber: number; txIndex: number },
): void {
  let missing = 0;
  let doubled = 0;
  for (const [i, env] of envs.entries()) {
    const c = count.get(toHex(sha256(env))) ?? 0;
    if (c === 0) missing++;
    if (c > 1) doubled++;
    const a = acks(i);
    expect(bytesEqual(decodeBlock(chain[a.blockNumber]!).data[a.txIndex]!, env), `envelope ${i}`).toBe(true);
  }
  expect({ missing, doubled }).toEqual({ missing: 0, doubled: 0 });
}
