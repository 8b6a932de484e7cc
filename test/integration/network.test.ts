/**
 * The README's `npm start` path, end to end with real processes: CAs, enrollment, genesis, three
 * Raft orderers, two peers, the `basic` chaincode deployed, the client SDK demo; then Ctrl-C leaves
 * no process behind (chaincode processes included). Also `network up --detach`, `loom chaincode
 * invoke|query` against it, and `network down`. Runs on its own ports and data directory so it never
 * meets a network a developer has running.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { httpRequest } from '../../packages/cli/src/network/http.js';
import { isPidAlive, readPids, stopPids } from '../../packages/cli/src/network/processes.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const loom = join(root, 'packages/cli/dist/bin/loom.js');
const work = mkdtempSync(join(tmpdir(), 'loom-net-'));

/** The default network-config with every port moved by `offset`, its data dir in `work`. */
function shiftedConfig(offset: number): string {
  const text = readFileSync(join(root, 'network-config/default.yaml'), 'utf8')
    .replace(/(port|Port): (\d+)/g, (_, k: string, p: string) => `${k}: ${Number(p) + offset}`)
    .replace(/^dataDir: .*$/m, `dataDir: ${join(work, `data-${offset}`)}`)
    .replace(/path: \.\.\/chaincode\/basic/, `path: ${join(root, 'chaincode/basic')}`);
  const file = join(work, `net-${offset}.yaml`);
  writeFileSync(file, text);
  return file;
}

/** The peer's `signature_checks_total` counters by outcome, from its operations endpoint (HTTPS). */
async function signatureChecks(dataDir: string, operationsPort: number): Promise<Record<string, number>> {
  const r = await httpRequest(`https://127.0.0.1:${operationsPort}/metrics`, { ca: tlsRoots(dataDir) });
  const text = r.body.toString();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^signature_checks_total\{outcome="(\w+)"\} (\d+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

/** Whether `pid` runs; a zombie (exited, its parent gone, not yet reaped by init) does not. */
const alive = (pid: number): boolean => isPidAlive(pid);

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [loom, ...args], { cwd: root });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

/** Pids of the chaincode processes (`start-chaincode`) the peers of `dataDir` started (Linux /proc). */
function chaincodeProcesses(dataDir: string): number[] {
  if (!existsSync('/proc/self/cmdline')) return [];
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (!cmd.includes('start-chaincode')) continue;
      if (readlinkSync(`/proc/${d}/cwd`).startsWith(dataDir) || cmd.includes(dataDir)) out.push(Number(d));
    } catch {
      // gone meanwhile, or not ours
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Chaincode processes of `dataDir` once none is left (bounded): a stopping peer ends them, they exit. */
async function chaincodeProcessesAfterStop(dataDir: string, timeoutMs = 15_000): Promise<number[]> {
  const end = Date.now() + timeoutMs;
  let left = chaincodeProcesses(dataDir);
  while (left.length > 0 && Date.now() < end) {
    await sleep(200);
    left = chaincodeProcesses(dataDir);
  }
  return left;
}

/** The TLS CA certificates of the launched network in `dataDir`. */
function tlsRoots(dataDir: string): string[] {
  return readdirSync(dataDir)
    .map((d) => join(dataDir, d, 'ca', 'data', 'tlsca-cert.pem'))
    .filter((f) => existsSync(f))
    .map((f) => readFileSync(f, 'utf8'));
}

/**
 * Waits until the peer at `port` (of the launched network in `dataDir`) has committed block
 * `blockNumber`: commit status is per peer, and another org's peer pulls the block on its own.
 */
async function committedOn(dataDir: string, port: number, blockNumber: number, timeoutMs = 60_000): Promise<void> {
  const ca = tlsRoots(dataDir);
  const end = Date.now() + timeoutMs;
  let height = -1;
  while (Date.now() < end) {
    const r = await httpRequest(`https://127.0.0.1:${port}/v1/channels/mychannel/height`, { ca }).catch(
      () => undefined,
    );
    height = r?.status === 200 ? (JSON.parse(r.body.toString()) as { height: number }).height : -1;
    if (height > blockNumber) return;
    await sleep(200);
  }
  throw new Error(`peer :${port} at height ${height} did not commit block ${blockNumber} within ${timeoutMs} ms`);
}

const upConfigs: string[] = [];

afterAll(async () => {
  // A failed test may leave a detached network behind: stop it before removing its files.
  for (const c of upConfigs) await run(['network', 'down', '--config', c], 60_000);
  rmSync(work, { recursive: true, force: true });
}, 150_000);

describe.skipIf(!existsSync(loom))('loom start and loom network', () => {
  it('start: brings the network up, runs the demo, and Ctrl-C stops every process', async () => {
    const config = shiftedConfig(25000 - 7000);
    const dataDir = join(work, 'data-18000');
    const child = spawn(process.execPath, [loom, 'start', '--config', config], { cwd: root });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      // Bounded generously: on a loaded machine every node takes tens of seconds to start.
      const deadline = Date.now() + 270_000;
      while (!out.includes('Press Ctrl-C') && Date.now() < deadline && child.exitCode === null) {
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(out, out).toContain('Press Ctrl-C');
      expect(out).toMatch(
        /peer peer0\.org1\.example\.com \(Org1MSP\) ready at https:\/\/127\.0\.0\.1:25051, joined mychannel/,
      );
      expect(out).toMatch(/peer peer0\.org2\.example\.com \(Org2MSP\) ready/);
      expect(out).toMatch(/peer +peer0\.org1\.example\.com +https:\/\/127\.0\.0\.1:25051/);
      expect(out).toMatch(/chaincode basic: installed on peer0\.org1\.example\.com/);
      expect(out).toMatch(/chaincode basic: installed on peer0\.org2\.example\.com/);
      expect(out).toMatch(/chaincode basic: approved by Admin@org1\.example\.com/);
      expect(out).toMatch(/chaincode basic: approved by Admin@org2\.example\.com/);
      expect(out).toMatch(/chaincode basic: definition 1\.0 sequence 1 committed on mychannel/);
      expect(out).toMatch(/submitted CreateAsset\(asset-\w+, blue, 5, Tomoko, 300\) .* committed VALID in block \d+/);
      expect(out).toMatch(/evaluated ReadAsset\(asset-\w+\) on peer0\.org2\.example\.com: \{.*"Owner":"Tomoko"/);
      expect(out).toMatch(/chaincode event 'TransferAsset' received through getChaincodeEvents: \{.*"Owner":"Max"/);
      expect(out).toMatch(/GetAssetHistory\(asset-\w+\): 2 versions/);
      expect(out).toMatch(/proof of the CreateAsset tx \(block \d+, tx \d+\) verified client-side: OK/);
      expect(out).not.toMatch(/falling back to the ordering demo/);
      const pids = JSON.parse(readFileSync(join(dataDir, 'pids.json'), 'utf8')) as { pid: number }[];
      expect(pids).toHaveLength(8);
      expect(pids.every((p) => alive(p.pid))).toBe(true);
      expect(chaincodeProcesses(dataDir).length).toBeGreaterThan(0);
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(out).toContain('every process stopped');
      expect(pids.filter((p) => alive(p.pid))).toEqual([]);
      expect(await chaincodeProcessesAfterStop(dataDir)).toEqual([]);
    } finally {
      // On a failure above, nothing may outlive the test: `loom start` stops its nodes on SIGINT
      // once up; before that, stop whatever it recorded (peers end their chaincode processes).
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      await stopPids(readPids(dataDir));
    }
  }, 400_000);

  describe('a detached network', () => {
    const config = shiftedConfig(28000 - 7000);
    const dataDir = join(work, 'data-21000');
    let rows: { pid: number; running: boolean }[] = [];

    it('network up --detach returns once ready, with basic deployed; status lists it', async () => {
      upConfigs.push(config);
      const up = await run(['network', 'up', '--detach', '--config', config], 270_000);
      expect(up.code, up.out).toBe(0);
      expect(up.out).toContain("network 'loom' is up");
      expect(up.out).toMatch(/chaincode basic: definition 1\.0 sequence 1 committed on mychannel/);
      const status = await run(['--json', 'network', 'status', '--config', config], 60_000);
      rows = JSON.parse(status.out) as { pid: number; running: boolean }[];
      expect(rows).toHaveLength(8);
      expect(rows.every((r) => r.running)).toBe(true);
      // A second `up` on the same data directory is refused while the first runs.
      const again = await run(['network', 'up', '--detach', '--config', config], 60_000);
      expect(again.code).not.toBe(0);
      expect(again.out).toMatch(/already running/);
    }, 400_000);

    it('loom chaincode invoke and query; unknown function and unknown chaincode fail with their codes', async () => {
      const checksBefore = await signatureChecks(dataDir, 9441 + 21000);
      const invoke = await run(
        [
          '--json',
          'chaincode',
          'invoke',
          '--config',
          config,
          '-C',
          'mychannel',
          '-n',
          'basic',
          '-c',
          '{"function":"CreateAsset","Args":["a1","blue","5","Tom","300"]}',
        ],
        60_000,
      );
      expect(invoke.code, invoke.out).toBe(0);
      const invoked = JSON.parse(invoke.out) as { status: string; blockNumber: number };
      expect(invoked).toMatchObject({ status: 'VALID', blockNumber: expect.any(Number) });
      // The invoke waited for Org1's peer; the query below reads Org2's, once it has the block.
      await committedOn(dataDir, 8051 + 21000, invoked.blockNumber);
      // Org1's peer, the gateway and an endorser, verified neither the client's signature (checked
      // when submitted) nor its own endorsement again when it committed the transaction.
      const checksAfter = await signatureChecks(dataDir, 9441 + 21000);
      const delta = (o: string) => (checksAfter[o] ?? 0) - (checksBefore[o] ?? 0);
      expect(delta('remembered_own')).toBeGreaterThanOrEqual(1);
      expect(delta('cache_hit')).toBeGreaterThanOrEqual(2);

      const query = await run(
        [
          'chaincode',
          'query',
          '--config',
          config,
          '--org',
          'Org2MSP',
          '-C',
          'mychannel',
          '-n',
          'basic',
          '-c',
          '{"Args":["ReadAsset","a1"]}',
        ],
        60_000,
      );
      expect(query.code, query.out).toBe(0);
      expect(JSON.parse(query.out)).toMatchObject({ ID: 'a1', Color: 'blue', Owner: 'Tom', Size: 5 });

      const unknownFn = await run(
        [
          '--json',
          'chaincode',
          'query',
          '--config',
          config,
          '-C',
          'mychannel',
          '-n',
          'basic',
          '-c',
          '{"function":"Nope","Args":[]}',
        ],
        60_000,
      );
      expect(unknownFn.code).toBe(1);
      expect(unknownFn.out).toMatch(/loom: CHAINCODE_ERROR: .*function that does not exist: Nope/);
      const unknownFnJson = JSON.parse(
        unknownFn.out.slice(unknownFn.out.indexOf('{'), unknownFn.out.lastIndexOf('}') + 1),
      ) as { error: { code: string } };
      expect(unknownFnJson.error.code).toBe('CHAINCODE_ERROR');

      const unknownCc = await run(
        [
          'chaincode',
          'invoke',
          '--config',
          config,
          '-C',
          'mychannel',
          '-n',
          'nosuch',
          '-c',
          '{"function":"X","Args":[]}',
        ],
        60_000,
      );
      expect(unknownCc.code).toBe(1);
      expect(unknownCc.out).toMatch(/loom: CHAINCODE_NOT_FOUND: chaincode nosuch is not defined on channel mychannel/);

      const noNetwork = await run(
        [
          'chaincode',
          'query',
          '--config',
          config,
          '--data',
          join(work, 'nowhere'),
          '-n',
          'basic',
          '-c',
          '{"Args":["GetAllAssets"]}',
        ],
        60_000,
      );
      expect(noNetwork.code).toBe(1);
      expect(noNetwork.out).toMatch(/NETWORK_NOT_FOUND: no network at .*nowhere: run `loom network up` first/);
    }, 400_000);

    it('network down leaves no process behind, peers and chaincode processes included', async () => {
      expect(chaincodeProcesses(dataDir).length).toBeGreaterThan(0);
      const down = await run(['network', 'down', '--config', config], 60_000);
      expect(down.code, down.out).toBe(0);
      expect(rows.length).toBe(8);
      expect(rows.filter((r) => alive(r.pid))).toEqual([]);
      expect(await chaincodeProcessesAfterStop(dataDir)).toEqual([]);
    }, 120_000);
  });

  it('a broken network-config is refused with the file, line and path named', async () => {
    const bad = join(work, 'bad.yaml');
    writeFileSync(
      bad,
      readFileSync(join(root, 'network-config/default.yaml'), 'utf8').replace('port: 7051', 'port: seventy'),
    );
    // A CLI process alone can take tens of seconds to start on a loaded machine.
    const r = await run(['network', 'up', '--config', bad], 60_000);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/bad\.yaml:\d+:\d+/);
    expect(r.out).toMatch(/organizations\[0\]\.peers\[0\]\.port/);
  }, 90_000);
});
