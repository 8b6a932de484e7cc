/**
 * The end-to-end benchmark driver: brings a network up from a network-config (or attaches to one
 * already up), starts worker client processes (worker.ts) that keep `concurrency` transactions in
 * flight against the peers' gateways, measures for a fixed window after a warm-up, samples the node
 * processes' CPU and memory from /proc, and writes the JSON and HTML reports.
 */
import { execFileSync } from 'node:child_process';
import { type ChildProcess, fork } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoomError, type NetworkConfig } from '@loom/common';
import { loadConfig, type progressPrinter } from '../commands/network.js';
import { loadIdentity, networkTlsRoots, peerUrl } from '../network/gateway.js';
import { isPidAlive, type PidRecord, readPids, stopPids } from '../network/processes.js';
import { networkUp } from '../network/up.js';
import { measureCryptoRates } from './crypto-rate.js';
import type { BenchOptions } from './options.js';
import type { FromWorker, OpRecord, ToWorker, WorkerSetup } from './protocol.js';
import { type BenchReport, buildReport, formatReport, type NodeUsage, renderHtml, type Topology } from './report.js';
import { cpuPercent, endorsersRequired, parseProcStatPpid, parseProcStatTicks, parseStatusKb } from './stats.js';

type Progress = ReturnType<typeof progressPrinter>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CALL_TIMEOUT_S = 30;
/** Longest the first transactions may take (they start the chaincode processes). */
const PRIME_TIMEOUT_S = 240;
/** Seconds of idle CPU sampled before the warm-up. */
const BASELINE_S = 5;

function ticksPerSecond(): number {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

interface Sample {
  ticks: number;
  rss: number;
  hwm: number;
}

function readProc(pid: number): Sample | undefined {
  try {
    const ticks = parseProcStatTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = parseStatusKb(status, 'VmRSS') ?? 0;
    return { ticks, rss, hwm: parseStatusKb(status, 'VmHWM') ?? rss };
  } catch {
    return undefined;
  }
}

/** Children of `pids` (e.g. chaincode processes of a peer), from /proc. */
function childrenOf(pids: ReadonlySet<number>): { pid: number; ppid: number; comm: string }[] {
  const out: { pid: number; ppid: number; comm: string }[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return out;
  }
  for (const e of entries) {
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = parseProcStatPpid(stat);
      if (pids.has(ppid))
        out.push({ pid: Number(e), ppid, comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) });
    } catch {
      // gone
    }
  }
  return out;
}

/** CPU and peak memory of a set of processes between `begin()` and `end()`. */
class ProcessMeter {
  readonly #procs: { name: string; kind: string; pid: number }[];
  readonly #begin = new Map<number, { ticks: number; at: number }>();
  readonly #peak = new Map<number, number>();
  readonly #hz = ticksPerSecond();
  #timer: NodeJS.Timeout | undefined;

  constructor(procs: { name: string; kind: string; pid: number }[]) {
    this.#procs = procs;
  }
  #sample(): Map<number, Sample> {
    const m = new Map<number, Sample>();
    for (const p of this.#procs) {
      const s = readProc(p.pid);
      if (!s) continue;
      m.set(p.pid, s);
      this.#peak.set(p.pid, Math.max(this.#peak.get(p.pid) ?? 0, s.rss, s.hwm));
    }
    return m;
  }
  begin(): void {
    const at = Date.now();
    for (const [pid, s] of this.#sample()) this.#begin.set(pid, { ticks: s.ticks, at });
    this.#timer = setInterval(() => this.#sample(), 1000);
  }
  end(): NodeUsage[] {
    if (this.#timer) clearInterval(this.#timer);
    const at = Date.now();
    const now = this.#sample();
    return this.#procs.map((p) => {
      const b = this.#begin.get(p.pid);
      const s = now.get(p.pid);
      return {
        name: p.name,
        kind: p.kind,
        pid: p.pid,
        cpuPercent: b && s ? cpuPercent(s.ticks - b.ticks, this.#hz, at - b.at) : 0,
        peakRssBytes: this.#peak.get(p.pid) ?? 0,
      };
    });
  }
}

function topologyOf(net: NetworkConfig, channel: string, chaincode: string): Topology {
  const ch = net.channels.find((c) => c.name === channel)!;
  const cc = net.chaincodes.find((c) => c.name === chaincode && c.channel === channel);
  const policy = cc?.endorsementPolicy ?? ch.policies.Endorsement;
  const orgs = net.organizations.filter((o) => ch.organizations.includes(o.mspId));
  const kib = (b: number) => (b % (1024 * 1024) === 0 ? `${b / 1024 / 1024} MB` : `${Math.round(b / 1024)} KB`);
  return {
    config: net.source,
    orgs: orgs.length,
    peers: orgs.reduce((n, o) => n + o.peers.length, 0),
    orderers: ch.consenters.length,
    endorsers: endorsersRequired(policy, orgs.length),
    endorsementPolicy: policy,
    tls: net.tls.enabled,
    batch: {
      timeout: `${ch.batch.batchTimeoutMs} ms`,
      maxMessageCount: ch.batch.maxMessageCount,
      preferredMaxBytes: kib(ch.batch.preferredMaxBytes),
    },
  };
}

/** A worker process and the messages it sent. */
class WorkerHandle {
  readonly child: ChildProcess;
  readonly name: string;
  #waiters: { type: string; resolve: (m: FromWorker) => void }[] = [];
  /** Control messages that arrived before anyone waited for them. */
  #inbox: FromWorker[] = [];
  #exited = false;
  error: string | undefined;

  constructor(
    index: number,
    onOps: (ops: readonly OpRecord[]) => void,
    onSamples: (s: Record<string, string>) => void,
  ) {
    this.name = `worker${index}`;
    const entry = fileURLToPath(new URL('./worker.js', import.meta.url));
    this.child = fork(entry, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    this.child.on('message', (m: FromWorker) => {
      if (m.type === 'ops') onOps(m.ops);
      else if (m.type === 'samples') onSamples(m.samples);
      else {
        if (m.type === 'error') this.error = m.message;
        const i = this.#waiters.findIndex((w) => w.type === m.type || m.type === 'error');
        if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(m);
        else this.#inbox.push(m);
      }
    });
    this.child.on('exit', () => {
      this.#exited = true;
      for (const w of this.#waiters.splice(0)) w.resolve({ type: 'error', message: `${this.name} exited` });
    });
  }
  send(m: ToWorker): void {
    if (!this.#exited && this.child.connected) this.child.send(m);
  }
  /** The next message of `type` (or an error), or an error after `timeoutMs`. */
  next(type: FromWorker['type'], timeoutMs: number): Promise<FromWorker> {
    const queued = this.#inbox.findIndex((m) => m.type === type || m.type === 'error');
    if (queued >= 0) return Promise.resolve(this.#inbox.splice(queued, 1)[0]!);
    if (this.#exited) return Promise.resolve({ type: 'error', message: `${this.name} exited` });
    return new Promise((resolveMsg) => {
      const w = { type, resolve: resolveMsg };
      this.#waiters.push(w);
      setTimeout(() => {
        const i = this.#waiters.indexOf(w);
        if (i >= 0) {
          this.#waiters.splice(i, 1);
          resolveMsg({ type: 'error', message: `${this.name}: no '${type}' within ${Math.round(timeoutMs / 1000)} s` });
        }
      }, timeoutMs).unref();
    });
  }
  async stop(): Promise<void> {
    this.send({ type: 'stop' });
    const deadline = Date.now() + 5000;
    while (!this.#exited && Date.now() < deadline) await sleep(50);
    if (!this.#exited) this.child.kill('SIGKILL');
  }
}

const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');

export interface BenchResult {
  readonly report: BenchReport;
  readonly jsonFile: string;
  readonly htmlFile: string;
}

/** Runs one benchmark; prints progress and the summary through `progress` / `print`. */
export async function runBench(
  options: BenchOptions,
  progress: Progress,
  print: (text: string) => void = (t) => process.stdout.write(`${t}\n`),
): Promise<BenchResult> {
  const startedAt = new Date();
  const net = await loadConfig({ config: options.config, ...(options.data ? { data: options.data } : {}) });
  const cc = net.chaincodes.find(
    (c) => c.name === options.chaincode && (!options.channel || c.channel === options.channel),
  );
  const channel = options.channel ?? cc?.channel;
  if (!channel || !net.channels.some((c) => c.name === channel)) {
    throw new LoomError(
      'BENCH_NO_CHANNEL',
      `${net.source} declares no chaincode '${options.chaincode}'${options.channel ? ` on channel '${options.channel}'` : ''}; the benchmark drives the basic asset-transfer chaincode`,
    );
  }
  const topology = topologyOf(net, channel, options.chaincode);
  const peerOrgs = net.organizations.filter(
    (o) => o.peers.length > 0 && net.channels.find((c) => c.name === channel)!.organizations.includes(o.mspId),
  );

  progress.step('measuring node:crypto P-256 sign and verify rates (1 s each)');
  const cryptoBefore = measureCryptoRates(1000);
  let started = false;
  const workers: WorkerHandle[] = [];
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const check = () => {
    if (interrupted) throw new LoomError('BENCH_INTERRUPTED', 'interrupted');
  };
  try {
    if (options.attach) {
      const alive = readPids(net.dataDir).filter((p) => isPidAlive(p.pid));
      if (alive.length === 0) {
        throw new LoomError(
          'NETWORK_NOT_UP',
          `--attach: no running network recorded in ${net.dataDir}; start one with \`loom network up --detach\``,
        );
      }
      progress.step(`attached to the network in ${net.dataDir} (${alive.length} processes)`);
    } else {
      progress.step(`bringing the network up from ${net.source}`);
      started = true;
      const handle = await networkUp(net, { detach: true, progress });
      if (!handle.chaincodeReady) {
        throw new LoomError(
          'BENCH_NO_CHAINCODE',
          `chaincode not deployed: ${handle.chaincodeNote ?? 'unknown reason'}`,
        );
      }
    }
    check();
    const pids = readPids(net.dataDir).filter((p) => p.kind !== 'ca' && isPidAlive(p.pid));
    const nodeProcs: { name: string; kind: string; pid: number }[] = pids.map((p: PidRecord) => ({
      name: p.name,
      kind: p.kind,
      pid: p.pid,
    }));
    const tlsRoots = net.tls.enabled ? await networkTlsRoots(net) : undefined;

    // Workers: the concurrency shared out, organizations (and their peers) taken in turn.
    const ops: OpRecord[] = [];
    const failureSamples: Record<string, string> = {};
    let liveValid = 0;
    let liveOk = 0;
    let liveFailed = 0;
    const onOps = (batch: readonly OpRecord[]) => {
      for (const o of batch) {
        ops.push(o);
        if (o[2] === 'VALID') liveValid++;
        else if (o[2] === 'OK') liveOk++;
        else liveFailed++;
      }
    };
    const onSamples = (s: Record<string, string>) => {
      for (const [k, v] of Object.entries(s)) failureSamples[k] ??= v;
    };
    const setups: WorkerSetup[] = [];
    const idPrefix = `bench-${stamp(startedAt)}-${Math.random().toString(36).slice(2, 6)}`;
    for (let i = 0; i < options.workers; i++) {
      const org = peerOrgs[i % peerOrgs.length]!;
      const peer = org.peers[Math.floor(i / peerOrgs.length) % org.peers.length]!;
      const id = await loadIdentity(net, org, 'User1');
      const share =
        Math.floor(options.concurrency / options.workers) + (i < options.concurrency % options.workers ? 1 : 0);
      const setup: WorkerSetup = {
        index: i,
        endpoint: peerUrl(net, peer),
        mspId: id.mspId,
        certPem: id.certPem,
        keyPem: id.keyPem,
        tlsRoots,
        channel,
        chaincode: options.chaincode,
        workload: options.workload,
        concurrency: share,
        idPrefix,
        callTimeoutS: CALL_TIMEOUT_S,
      };
      const w = new WorkerHandle(i, onOps, onSamples);
      workers.push(w);
      setups.push(setup);
    }
    await Promise.all(
      workers.map(async (w, i) => {
        const ready = await w.next('ready', 120_000);
        if (ready.type === 'error') throw new LoomError('BENCH_WORKER_FAILED', ready.message);
        const configured = w.next('configured', 30_000);
        w.send({ type: 'setup', setup: setups[i]! });
        const m = await configured;
        if (m.type === 'error') throw new LoomError('BENCH_WORKER_FAILED', m.message);
      }),
    );
    check();

    // Priming: a first transaction from every worker starts the chaincode on the peers, which can
    // take long on a loaded machine; the warm-up clock starts once it answers.
    {
      progress.step('priming: one transaction per worker (starts the chaincode processes)');
      const deadline = Date.now() + PRIME_TIMEOUT_S * 1000;
      for (const w of workers) w.send({ type: 'prime', deadline });
      const primed = await Promise.all(
        workers.map((w) => w.next('primed', (PRIME_TIMEOUT_S + CALL_TIMEOUT_S + 10) * 1000)),
      );
      const failed = primed.find((m) => m.type !== 'primed' || !m.ok);
      if (failed) {
        const why =
          failed.type === 'primed'
            ? (failed.lastError ?? 'timeout')
            : failed.type === 'error'
              ? failed.message
              : failed.type;
        throw new LoomError('BENCH_PRIME_FAILED', `no transaction went through within ${PRIME_TIMEOUT_S} s: ${why}`);
      }
      const slowest = Math.max(...primed.map((m) => (m.type === 'primed' ? m.seconds : 0)));
      progress.step(`primed in ${slowest.toFixed(1)} s`);
    }
    check();

    // The pool of assets read or transferred, created before the warm-up.
    let poolIds: number[] = [];
    const pool = { requested: options.pool, created: 0, seconds: 0, failures: {} as Record<string, number> };
    if (options.pool > 0) {
      progress.step(
        `creating a pool of ${options.pool.toLocaleString('en-US')} assets (at most ${options.poolTimeoutS} s)`,
      );
      const t0 = Date.now();
      const deadline = t0 + options.poolTimeoutS * 1000;
      workers.forEach((w, i) => {
        const indices: number[] = [];
        for (let k = i; k < options.pool; k += workers.length) indices.push(k);
        w.send({ type: 'pool', indices, deadline });
      });
      const ticker = setInterval(
        () => progress.step(`  pool: creating… ${Math.round((Date.now() - t0) / 1000)} s`),
        10_000,
      );
      try {
        for (const w of workers) {
          const m = await w.next('pool-done', deadline - Date.now() + (CALL_TIMEOUT_S + 30) * 1000);
          if (m.type === 'error') throw new LoomError('BENCH_WORKER_FAILED', m.message);
          if (m.type === 'pool-done') {
            poolIds.push(...m.created);
            for (const [k, v] of Object.entries(m.failures)) pool.failures[k] = (pool.failures[k] ?? 0) + v;
          }
        }
      } finally {
        clearInterval(ticker);
      }
      poolIds = poolIds.sort((a, b) => a - b);
      pool.created = poolIds.length;
      pool.seconds = (Date.now() - t0) / 1000;
      progress.step(`pool: ${pool.created} assets in ${pool.seconds.toFixed(1)} s`);
      if (pool.created === 0) {
        const why = Object.entries(pool.failures)
          .map(([k, v]) => `${k} ×${v}`)
          .join(', ');
        throw new LoomError(
          'BENCH_POOL_FAILED',
          `no pool asset could be created (${why || 'timeout'}): ${Object.values(failureSamples)[0] ?? ''}`,
        );
      }
    }
    check();

    // Idle baseline: the nodes' CPU with no load (timers, heartbeats, gossip), so the report can
    // tell the CPU each operation costs, which a loaded machine changes far less than the tps.
    const peerPids = new Set(nodeProcs.filter((p) => p.kind === 'peer').map((p) => p.pid));
    const chaincodeProcs = childrenOf(peerPids).map((c) => ({
      name: `${nodeProcs.find((p) => p.pid === c.ppid)?.name ?? c.ppid}/${c.comm}`,
      kind: 'chaincode',
      pid: c.pid,
    }));
    const nodeMeter = new ProcessMeter([...nodeProcs, ...chaincodeProcs]);
    progress.step(`idle baseline: node CPU over ${BASELINE_S} s without load`);
    nodeMeter.begin();
    await sleep(BASELINE_S * 1000);
    const idle = new Map(nodeMeter.end().map((u) => [u.pid, u.cpuPercent]));
    check();

    // Warm-up, then the measured window.
    const loadavgBefore = loadavg();
    const measureFrom = Date.now() + options.warmupS * 1000 + 500;
    const endAt = measureFrom + options.durationS * 1000;
    const clientProcs = workers.map((w) => ({ name: w.name, kind: 'client', pid: w.child.pid ?? -1 }));
    progress.step(
      `warm-up ${options.warmupS} s, then ${options.durationS} s measured (${options.concurrency} in flight)`,
    );
    for (const w of workers) w.send({ type: 'run', pool: poolIds, measureFrom, endAt });
    while (Date.now() < measureFrom && !interrupted) await sleep(Math.min(200, Math.max(1, measureFrom - Date.now())));
    check();
    const clientMeter = new ProcessMeter(clientProcs);
    nodeMeter.begin();
    clientMeter.begin();
    liveValid = liveOk = liveFailed = 0;
    let lastPrint = Date.now();
    let second = 0;
    while (Date.now() < endAt && !interrupted) {
      await sleep(Math.min(1000, Math.max(1, endAt - Date.now())));
      const now = Date.now();
      if (now - lastPrint >= 5000 || now >= endAt) {
        second = Math.round((now - measureFrom) / 1000);
        const dt = (now - lastPrint) / 1000;
        progress.step(
          `  ${String(second).padStart(3)} s: ${(liveValid / dt).toFixed(0)} valid tps${liveOk > 0 ? `, ${(liveOk / dt).toFixed(0)} evaluate tps` : ''}${liveFailed > 0 ? `, ${liveFailed} failed` : ''}`,
        );
        liveValid = liveOk = liveFailed = 0;
        lastPrint = now;
      }
    }
    const nodes = nodeMeter.end().map((u) => ({ ...u, idleCpuPercent: idle.get(u.pid) ?? 0 }));
    const clients = clientMeter.end();
    const loadavgAfter = loadavg();
    check();
    // The machine's rate: the better of a measurement before the network started and one now
    // (other load on the machine only ever lowers it).
    const cryptoAfter = measureCryptoRates(1000);
    const crypto = {
      signPerSec: Math.max(cryptoBefore.signPerSec, cryptoAfter.signPerSec),
      verifyPerSec: Math.max(cryptoBefore.verifyPerSec, cryptoAfter.verifyPerSec),
    };
    progress.step(
      `node:crypto P-256 per core: sign ${Math.round(crypto.signPerSec)}/s, verify ${Math.round(crypto.verifyPerSec)}/s`,
    );
    let warmupOps = 0;
    for (const w of workers) {
      const m = await w.next('done', (CALL_TIMEOUT_S + 15) * 1000);
      if (m.type === 'done') warmupOps += m.warmupOps;
      else progress.step(`  ${m.type === 'error' ? m.message : 'worker did not finish'}`);
    }

    const report = buildReport({
      options,
      startedAt: startedAt.toISOString(),
      machine: {
        cores: availableParallelism(),
        cpuModel: cpus()[0]?.model ?? 'unknown',
        node: process.version,
        loadavgBefore,
        loadavgAfter,
      },
      topology,
      network: started ? 'started' : 'attached',
      pool,
      warmupOps,
      measureFrom,
      ops: ops.filter((o) => o[0] >= measureFrom && o[0] <= endAt),
      failureSamples,
      nodes,
      clients,
      crypto,
    });
    const outDir = resolve(options.out);
    await mkdir(outDir, { recursive: true });
    const base = join(outDir, `e2e-${options.workload}-${stamp(startedAt)}`);
    await writeFile(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(`${base}.html`, renderHtml(report));
    print(`\n${formatReport(report)}\n\nreport: ${base}.json\n        ${base}.html`);
    return { report, jsonFile: `${base}.json`, htmlFile: `${base}.html` };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await Promise.all(workers.map((w) => w.stop()));
    if (started && !options.keep) {
      progress.step('stopping the network');
      await stopPids(readPids(net.dataDir));
    } else if (started) {
      progress.step(
        `the network stays up (data in ${net.dataDir}); stop it with \`loom network down -c ${options.config}\``,
      );
    }
  }
}
