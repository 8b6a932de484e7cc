// Ordering throughput and latency of three local orderer processes (Raft over libp2p, level storage).
// `npm run bench -- orderer [seconds] [clients] [batch]` (default 15 s, 1000 concurrent clients, batch 1;
// bounded to 120 s). With batch > 1 each request carries that many envelopes on the batch broadcast
// route (POST …/broadcast/batch); batch 1 is the single-envelope route Fabric clients use.
// Each client broadcasts one envelope at a time and waits for its block, so throughput is at most
// clients / latency: with too few clients the bench measures batching latency, not ordering capacity.
// Uses the built dist: packages/orderer/dist/main.js (or LOOM_ORDERER_BIN) and packages/common/dist.
// Prints ordered tx/s, blocks/s, tx per block, and broadcast→commit latency (the block latency a
// client sees: batching + Raft commit + write) at p50/p90/p99, and the orderers' CPU time per ordered
// envelope (from /proc, all three processes; a figure that does not depend on the machine's load).
// An overloaded orderer refuses a request at once (503 ORDERER_BUSY, admission control): the client
// waits Retry-After and resends the same envelopes (counted as refusedBusy; their latency counts from
// the first attempt). LOOM_BENCH_KEEP=1 keeps the orderers' directories (logs, level files);
// LOOM_BENCH_LOGSPEC sets their log spec (default warn).
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const COMMON = process.env.LOOM_COMMON_DIST ?? join(here, '../packages/common/dist');
const BIN = process.env.LOOM_ORDERER_BIN ?? join(here, '../packages/orderer/dist/main.js');
const CH = 'benchchannel';

const load = (p) => import(pathToFileURL(join(COMMON, p)).href);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function until(what, fn, timeoutMs) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// Keep-alive node:http (fetch costs the client several times more CPU per request, and the client
// shares the machine's 2 cores with the orderers it measures).
const agent = new Agent({ keepAlive: true, maxSockets: 5000 });
function post(port, path, body) {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/octet-stream', 'content-length': body.length },
        timeout: 15_000,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode,
            retryAfter: Number(res.headers['retry-after'] ?? 0),
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

function pct(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export async function run(args = []) {
  const seconds = Number(args[0] ?? 15);
  const clients = Number(args[1] ?? 1000);
  const batch = Number(args[2] ?? 1);
  if (!(Number.isInteger(batch) && batch >= 1 && batch <= 1000)) throw new Error('batch must be in [1, 1000]');
  if (!(seconds > 0 && seconds <= 120)) throw new Error('seconds must be in (0, 120]');
  if (!(clients >= 1 && clients <= 5000)) throw new Error('clients must be in [1, 5000]');
  const common = await load('index.js');
  const { sha256 } = await load('crypto/hash.js');
  const { createTestCa, createTestOrg, writeMspDir } = await load('testing/index.js');

  const root = await mkdtemp(join(tmpdir(), 'loom-bench-orderer-'));
  const children = [];
  try {
    const ca = await createTestCa({ mspId: 'OrdererMSP' });
    const orderers = [];
    for (let i = 0; i < 3; i++) orderers.push(await ca.issue({ cn: `orderer${i}.example.com`, role: 'orderer' }));
    const admin = await ca.issue({ cn: 'Admin@example.com', role: 'admin' });
    const org1 = await createTestOrg('Org1MSP');
    const nodes = [];
    for (const [i, o] of orderers.entries()) {
      const ports = { port: await freePort(), adminPort: await freePort(), raftPort: await freePort() };
      const dir = join(root, `orderer${i}`);
      await mkdir(dir, { recursive: true });
      await writeMspDir(join(dir, 'msp'), ca.mspConfig(), o);
      await writeFile(
        join(dir, 'orderer.yaml'),
        [
          `id: orderer${i}`,
          'mspId: OrdererMSP',
          'mspDir: ./msp',
          'dataDir: ./data',
          'host: 127.0.0.1',
          `port: ${ports.port}`,
          `adminPort: ${ports.adminPort}`,
          `raftPort: ${ports.raftPort}`,
          `logSpec: ${process.env.LOOM_BENCH_LOGSPEC ?? 'warn'}`,
          '',
        ].join('\n'),
      );
      nodes.push({ id: `orderer${i}`, dir, ...ports, cert: o.certPem });
    }
    const pd = (rule) => ({ rule, version: 0, modPolicy: 'Admins' });
    const org = (msp, policies) => ({
      mspId: msp.mspId,
      msp: {
        rootCerts: [...msp.rootCerts],
        intermediateCerts: [],
        admins: [],
        crls: [],
        tlsRootCerts: [],
        tlsIntermediateCerts: [],
        nodeOUs: true,
      },
      anchorPeers: [],
      policies: Object.fromEntries(Object.entries(policies).map(([k, v]) => [k, pd(v)])),
      version: 0,
      modPolicy: 'Admins',
    });
    const config = {
      channelId: CH,
      sequence: 0,
      version: 0,
      modPolicy: 'Admins',
      capabilities: ['V1'],
      orgs: {
        Org1MSP: org(org1.mspConfig(), {
          Readers: "OR('Org1MSP.member')",
          Writers: "OR('Org1MSP.admin', 'Org1MSP.client')",
          Admins: "OR('Org1MSP.admin')",
        }),
      },
      policies: { Readers: pd('ANY Readers'), Writers: pd('ANY Writers'), Admins: pd('MAJORITY Admins') },
      orderer: {
        version: 0,
        modPolicy: 'Admins',
        orgs: { OrdererMSP: org(ca.mspConfig(), { Admins: "OR('OrdererMSP.admin')" }) },
        policies: {},
        batch: { batchTimeoutMs: 100, maxMessageCount: 500, absoluteMaxBytes: 1 << 20, preferredMaxBytes: 512 * 1024 },
        consenters: nodes.map((n) => ({
          id: n.id,
          mspId: 'OrdererMSP',
          host: '127.0.0.1',
          port: n.port,
          raftPort: n.raftPort,
          identityCert: n.cert,
          tlsCert: '',
        })),
      },
    };
    const envelope = (signer, type, data) => {
      const creator = common.encodeSerializedIdentity(signer.serialized);
      const nonce = randomBytes(24);
      const header = common.encodeHeader({
        channelHeader: common.encodeChannelHeader({
          type,
          version: 1,
          channelId: CH,
          txId: type === common.HeaderType.ENDORSER_TRANSACTION ? common.computeTxId(nonce, creator, sha256) : '',
          timestamp: Date.now(),
          extension: new Uint8Array(),
        }),
        signatureHeader: common.encodeSignatureHeader({ creator, nonce }),
      });
      const payload = common.encodePayload({ header, data });
      return common.encodeEnvelope({ payload, signature: signer.signer.sign(payload) });
    };
    const genesisEnv = envelope(
      admin,
      common.HeaderType.CONFIG,
      common.encodeConfigEnvelope({ config: common.encodeChannelConfig(config), lastUpdate: null }),
    );
    const genesis = common.encodeBlock(
      common.buildBlock(
        0,
        common.GENESIS_PREVIOUS_HASH,
        [genesisEnv],
        common.encodeConsenterMetadata({ lastConfig: 0, raftIndex: 0 }),
        sha256,
      ),
    );

    for (const n of nodes) {
      // LOOM_ORDERER_NODE_ARGS: extra node flags, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the orderers.
      const nodeArgs = (process.env.LOOM_ORDERER_NODE_ARGS ?? '').split(' ').filter(Boolean);
      const child = spawn(process.execPath, [...nodeArgs, BIN, '--config', join(n.dir, 'orderer.yaml')], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const log = createWriteStream(join(n.dir, 'orderer.log'));
      child.stdout.pipe(log);
      child.stderr.pipe(log);
      children.push(child);
    }
    for (const n of nodes) {
      await until(
        `${n.id} to listen`,
        async () => (await fetch(`http://127.0.0.1:${n.adminPort}/participation/v1/channels`)).ok,
        180_000,
      );
      const r = await fetch(`http://127.0.0.1:${n.adminPort}/participation/v1/channels`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: genesis,
      });
      if (r.status !== 201) throw new Error(`join ${n.id}: ${r.status} ${await r.text()}`);
    }
    await until(
      'a leader',
      async () => {
        const r = await fetch(`http://127.0.0.1:${nodes[0].adminPort}/participation/v1/channels/${CH}`);
        return (await r.json()).leader;
      },
      60_000,
    );

    // utime + stime of the orderer processes, in ms (Linux /proc; undefined elsewhere).
    const cpuMs = async () => {
      try {
        const { readFile } = await import('node:fs/promises');
        let ticks = 0;
        for (const c of children) {
          const stat = await readFile(`/proc/${c.pid}/stat`, 'utf8');
          const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          ticks += Number(f[11]) + Number(f[12]);
        }
        return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
      } catch {
        return undefined;
      }
    };
    // The orderers' CPU with no load (Raft ticks and heartbeats), over 3 s: subtracted below so the
    // per-envelope figure is the marginal cost of ordering, which is what bounds capacity.
    const idleStart = await cpuMs();
    const idleT0 = Date.now();
    await new Promise((r) => setTimeout(r, 3_000));
    const idleEnd = await cpuMs();
    const idleCpuMsPerSec =
      idleStart !== undefined && idleEnd !== undefined ? ((idleEnd - idleStart) * 1000) / (Date.now() - idleT0) : 0;
    const cpuBefore = await cpuMs();
    const clientBefore = process.cpuUsage();
    const latencies = [];
    let ok = 0;
    let failed = 0;
    // Envelopes an overloaded orderer refused at once (503 ORDERER_BUSY); the client waits Retry-After.
    let refused = 0;
    const backOff = async (r) => {
      const ms = Math.min(Math.max(0, stopAt - Date.now()), 1000 * Math.max(0.1, r.retryAfter || 1));
      await new Promise((res) => setTimeout(res, ms));
    };
    let maxBlock = 0;
    // 200 bytes of transaction data; the envelope around it also carries the creator's certificate.
    const data = randomBytes(200);
    let envBytes = 0;
    const framed = (envs) => {
      const out = Buffer.allocUnsafe(envs.reduce((n, e) => n + 4 + e.length, 0));
      let o = 0;
      for (const e of envs) {
        out.writeUInt32BE(e.length, o);
        out.set(e, o + 4);
        o += 4 + e.length;
      }
      return out;
    };
    const started = Date.now();
    const stopAt = started + seconds * 1000;
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        // Envelopes refused busy are sent again as they are (a real client resends, it does not re-sign);
        // their latency counts from the first attempt.
        let again;
        for (let k = 0; Date.now() < stopAt; k++) {
          const n = nodes[(c + k) % nodes.length];
          const envs =
            again?.envs ??
            Array.from({ length: batch }, () => envelope(org1.client, common.HeaderType.ENDORSER_TRANSACTION, data));
          if (envBytes === 0) envBytes = envs[0].length;
          const t0 = again?.t0 ?? performance.now();
          again = undefined;
          try {
            if (batch === 1) {
              const r = await post(n.port, `/v1/channels/${CH}/broadcast`, envs[0]);
              if (r.status === 503 && r.body.includes('ORDERER_BUSY')) {
                refused++;
                again = { envs, t0 };
                await backOff(r);
              } else if (r.status === 200) {
                ok++;
                latencies.push(performance.now() - t0);
                const body = JSON.parse(r.body);
                if (body.blockNumber > maxBlock) maxBlock = body.blockNumber;
              } else failed++;
            } else {
              const r = await post(n.port, `/v1/channels/${CH}/broadcast/batch`, framed(envs));
              if (r.status === 503 && r.body.includes('ORDERER_BUSY')) {
                refused += batch;
                again = { envs, t0 };
                await backOff(r);
              } else if (r.status !== 200) failed += batch;
              else {
                const ms = performance.now() - t0;
                for (const x of JSON.parse(r.body).results) {
                  if (x.status !== 200) {
                    failed++;
                    continue;
                  }
                  ok++;
                  latencies.push(ms);
                  if (x.blockNumber > maxBlock) maxBlock = x.blockNumber;
                }
              }
            }
          } catch {
            failed++;
          }
        }
      }),
    );
    const elapsed = (Date.now() - started) / 1000;
    const cpuAfter = await cpuMs();
    const clientCpu = process.cpuUsage(clientBefore);
    const clientCpuMsPerTx = ok > 0 ? (clientCpu.user + clientCpu.system) / 1000 / ok : undefined;
    const cpuPerTxMs =
      cpuBefore !== undefined && cpuAfter !== undefined && ok > 0 ? (cpuAfter - cpuBefore) / ok : undefined;
    const marginalCpuPerTxMs =
      cpuPerTxMs === undefined ? undefined : Math.max(0, cpuPerTxMs - (idleCpuMsPerSec * elapsed) / ok);
    latencies.sort((a, b) => a - b);
    const result = {
      bench: 'orderer',
      nodes: 3,
      clients,
      batch,
      envelopeBytes: envBytes,
      seconds: Number(elapsed.toFixed(1)),
      orderedTxPerSec: Math.round(ok / elapsed),
      blocksPerSec: Number((maxBlock / elapsed).toFixed(1)),
      txPerBlock: Number((ok / Math.max(1, maxBlock)).toFixed(1)),
      latencyMs: {
        p50: Math.round(pct(latencies, 50)),
        p90: Math.round(pct(latencies, 90)),
        p99: Math.round(pct(latencies, 99)),
      },
      failed,
      refusedBusy: refused,
      ordererCpuMsPerTx: cpuPerTxMs === undefined ? null : Number(cpuPerTxMs.toFixed(3)),
      ordererIdleCpuMsPerSec: Math.round(idleCpuMsPerSec),
      ordererMarginalCpuMsPerTx: marginalCpuPerTxMs === undefined ? null : Number(marginalCpuPerTxMs.toFixed(3)),
      clientCpuMsPerTx: clientCpuMsPerTx === undefined ? null : Number(clientCpuMsPerTx.toFixed(3)),
      loadAverage: (await import('node:os')).loadavg().map((x) => Number(x.toFixed(2))),
    };
    console.log(
      `orderer (3 nodes, ${clients} clients × ${batch} envelope(s) of ${envBytes} bytes per request, ${result.seconds}s): ${result.orderedTxPerSec} tx/s ordered, ` +
        `${result.blocksPerSec} blocks/s, ${result.txPerBlock} tx/block, broadcast→commit latency ` +
        `p50 ${result.latencyMs.p50} ms, p90 ${result.latencyMs.p90} ms, p99 ${result.latencyMs.p99} ms, ${failed} failed, ${refused} refused busy (503, retried after Retry-After)` +
        (cpuPerTxMs === undefined
          ? ''
          : `; orderer CPU ${cpuPerTxMs.toFixed(2)} ms per envelope (3 processes; ${marginalCpuPerTxMs.toFixed(2)} ms above the ` +
            `${Math.round(idleCpuMsPerSec)} ms/s they use idle) → the orderers alone could order at most ` +
            `${Math.round((2000 - idleCpuMsPerSec) / marginalCpuPerTxMs)} tx/s on 2 idle cores`) +
        (clientCpuMsPerTx === undefined
          ? ''
          : `; bench client CPU ${clientCpuMsPerTx.toFixed(2)} ms per envelope (signing + HTTP, same machine)`) +
        `; load average ${result.loadAverage.join(' ')}`,
    );
    console.log(JSON.stringify(result));
  } finally {
    // SIGTERM first (a graceful stop writes --cpu-prof profiles), SIGKILL what is left.
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await Promise.all(
      children.map((c) =>
        c.exitCode !== null || c.signalCode !== null
          ? undefined
          : Promise.race([new Promise((r) => c.once('exit', r)), new Promise((r) => setTimeout(r, 5_000))]),
      ),
    );
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    agent.destroy();
    // LOOM_BENCH_KEEP=1 keeps the orderers' directories (logs, level files) for inspection.
    if (process.env.LOOM_BENCH_KEEP === '1') console.error(`kept ${root}`);
    else await rm(root, { recursive: true, force: true });
  }
}
