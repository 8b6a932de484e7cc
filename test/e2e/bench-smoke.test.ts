/**
 * The end-to-end benchmark for real, briefly: `loom bench` brings the default topology up (ports
 * shifted by LOOM_BENCH_SMOKE_OFFSET, default +13000, its own data directory), primes the chaincode,
 * drives 20 s of closed-loop `create` load from two worker client processes (on a heavily loaded
 * machine one transaction can take several seconds), writes the
 * JSON and HTML reports, and stops the network. Also: bad arguments fail fast with a clear error,
 * through the CLI and through `bench/run.js e2e`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPidAlive, readPids, stopPids } from '../../packages/cli/src/network/processes.js';
import { LOOM as loom, ROOT as root, runNode as run, writeNetworkConfig } from './helpers.js';

const OFFSET = Number(process.env.LOOM_BENCH_SMOKE_OFFSET ?? 13_000);
let work = '';
let config = '';

/**
 * Stops whatever the launcher recorded in the data directory (a failed run may leave processes):
 * SIGTERM first, so the peers end their chaincode processes, then SIGKILL what is left.
 */
async function stopRecorded(): Promise<void> {
  if (work) await stopPids(readPids(join(work, 'data')));
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'loom-bench-smoke-'));
  config = writeNetworkConfig(join(work, 'network.yaml'), { offset: OFFSET, dataDir: join(work, 'data') });
});

afterAll(async () => {
  await stopRecorded();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

describe('loom bench (e2e smoke)', () => {
  it('refuses bad arguments at once, with the option named', async () => {
    expect(existsSync(loom), `${loom} (npm run build)`).toBe(true);
    const cli = await run([loom, 'bench', '--concurrency', 'lots', '-c', config], 60_000);
    expect(cli.code).toBe(1);
    expect(cli.out).toMatch(/BENCH_BAD_ARGUMENT: --concurrency: expected a whole number, got 'lots'/);
    expect(cli.out).not.toMatch(/\n\s+at /); // no stack trace
    const npm = await run([join(root, 'bench/run.js'), 'e2e', '--workload', 'nope'], 60_000);
    expect(npm.code).toBe(2);
    expect(npm.out).toMatch(/BENCH_BAD_ARGUMENT: --workload: expected one of create, read, transfer, mixed/);
    // Nothing was started.
    expect(existsSync(join(work, 'data', 'pids.json'))).toBe(false);
  });

  it('brings the network up, measures committed transactions, writes JSON and HTML, stops the network', async () => {
    const out = join(work, 'out');
    const r = await run(
      [
        loom,
        'bench',
        '-c',
        config,
        '--workload',
        'create',
        '--concurrency',
        '8',
        '--workers',
        '2',
        '--warmup',
        '5',
        '--duration',
        '20',
        '--out',
        out,
      ],
      540_000,
    );
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/committed VALID: [\d.]+ tps/);
    expect(r.out).toMatch(/crypto bound: node:crypto P-256 sign [\d,]+\/s, verify [\d,]+\/s per core/);
    const files = readdirSync(out);
    const json = files.find((f) => /^e2e-create-.*\.json$/.test(f));
    const html = files.find((f) => /^e2e-create-.*\.html$/.test(f));
    expect(json, files.join(', ')).toBeDefined();
    expect(html, files.join(', ')).toBeDefined();
    const report = JSON.parse(readFileSync(join(out, json!), 'utf8'));
    expect(report.results.validTps).toBeGreaterThan(0);
    expect(report.results.valid).toBeGreaterThan(0);
    expect(report.results.submitLatencyMs.p99).toBeGreaterThan(0);
    expect(report.topology).toMatchObject({ orderers: 3, peers: 2, endorsers: 2, tls: true });
    // Every peer and orderer was measured.
    const kinds = report.nodes.map((n: { kind: string }) => n.kind);
    expect(kinds.filter((k: string) => k === 'peer')).toHaveLength(2);
    expect(kinds.filter((k: string) => k === 'orderer')).toHaveLength(3);
    for (const n of report.nodes) expect(n.peakRssBytes).toBeGreaterThan(0);
    expect(report.crypto.boundTps).toBeGreaterThan(0);
    const page = readFileSync(join(out, html!), 'utf8');
    expect(page).toContain('<svg');
    expect(page).toContain('Throughput over time');
    // The network the bench started is stopped again.
    const pids = JSON.parse(readFileSync(join(work, 'data', 'pids.json'), 'utf8')) as { pid: number }[];
    // A zombie (exited, reparented, not yet reaped by init) holds nothing: it does not count.
    const alive = pids.filter(({ pid }) => isPidAlive(pid));
    expect(alive).toEqual([]);
  });
});
