/**
 * The benchmark's pure parts: option validation (bad input → BENCH_BAD_ARGUMENT naming the
 * option), percentile and rate arithmetic, /proc parsing, the signature model behind the crypto
 * bound, and the reports. The real run against a launched network is test/e2e/bench-smoke.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { buildCli } from '../index.js';
import { parseBenchOptions } from './options.js';
import type { OpRecord } from './protocol.js';
import { type BenchInput, buildReport, formatReport, renderHtml } from './report.js';
import {
  cpuPercent,
  cryptoBoundTps,
  endorsersRequired,
  latencyHistogram,
  parseProcStatPpid,
  parseProcStatTicks,
  parseStatusKb,
  percentile,
  perSecond,
  signatureModel,
  summarizeLatencies,
} from './stats.js';

describe('bench options', () => {
  it('has modest defaults and reads every option', () => {
    const d = parseBenchOptions({});
    expect(d).toMatchObject({ workload: 'create', concurrency: 64, workers: 4, durationS: 30, warmupS: 10, pool: 0 });
    expect(parseBenchOptions({ workload: 'transfer' }).pool).toBe(10_000);
    expect(parseBenchOptions({ workload: 'read' }).pool).toBe(1_000);
    const o = parseBenchOptions({
      workload: 'mixed',
      concurrency: '8',
      workers: '2',
      durationS: '5',
      warmupS: '0',
      pool: '50',
      attach: true,
      out: '/tmp/x',
    });
    expect(o).toMatchObject({
      workload: 'mixed',
      concurrency: 8,
      workers: 2,
      durationS: 5,
      warmupS: 0,
      pool: 50,
      attach: true,
      out: '/tmp/x',
    });
    expect(parseBenchOptions({ concurrency: '2' }).workers).toBe(2);
  });

  it.each([
    [{ workload: 'delete' }, /--workload: expected one of create, read, transfer, mixed, got 'delete'/],
    [{ concurrency: 'many' }, /--concurrency: expected a whole number, got 'many'/],
    [{ concurrency: '0' }, /--concurrency: must be between 1 and 4096, got 0/],
    [{ concurrency: '-3' }, /--concurrency: expected a whole number/],
    [{ durationS: '1.5' }, /--duration: expected a whole number/],
    [{ durationS: '99999' }, /--duration: must be between 1 and 3600/],
    [{ warmupS: 'x' }, /--warmup: expected a whole number/],
    [{ workers: '5', concurrency: '4' }, /--workers: more workers \(5\) than transactions in flight \(4\)/],
    [{ workload: 'transfer', pool: '0' }, /--pool: must be between 1 and/],
    [{ config: '' }, /--config: expected a value/],
  ])('refuses %j with a clear BENCH_BAD_ARGUMENT', (raw, message) => {
    let err: unknown;
    try {
      parseBenchOptions(raw);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'BENCH_BAD_ARGUMENT', httpStatus: 400 });
    expect((err as Error).message).toMatch(message);
  });

  it('`loom bench` refuses bad arguments before starting anything', async () => {
    const cli = buildCli().exitOverride();
    await expect(cli.parseAsync(['node', 'loom', 'bench', '--concurrency', 'lots'])).rejects.toMatchObject({
      code: 'BENCH_BAD_ARGUMENT',
      message: expect.stringMatching(/--concurrency/),
    });
    await expect(
      buildCli().exitOverride().parseAsync(['node', 'loom', 'bench', '--workload', 'nope']),
    ).rejects.toMatchObject({ code: 'BENCH_BAD_ARGUMENT' });
  });
});

describe('bench arithmetic', () => {
  it('nearest-rank percentiles', () => {
    const v = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(v, 50)).toBe(50);
    expect(percentile(v, 95)).toBe(95);
    expect(percentile(v, 99)).toBe(99);
    expect(percentile(v, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
    const s = summarizeLatencies([30, 10, 20, 40]);
    expect(s).toEqual({ count: 4, mean: 25, p50: 20, p95: 40, p99: 40, max: 40 });
  });

  it('per-second counts and log-spaced histograms', () => {
    expect(perSecond([1000, 1500, 1999, 2000, 4999, 5000, 999], 1000, 4)).toEqual([3, 1, 0, 1]);
    const h = latencyHistogram([0.5, 3, 4, 40, 900, 1200]);
    expect(h[0]).toEqual({ le: 1, count: 1 });
    expect(h.find((b) => b.le === 5)?.count).toBe(2);
    expect(h.find((b) => b.le === 50)?.count).toBe(1);
    expect(h.at(-1)).toEqual({ le: 2000, count: 1 });
    expect(h.reduce((s, b) => s + b.count, 0)).toBe(6);
  });

  it('parses /proc stat and status (command names with spaces and parentheses)', () => {
    const stat = '4242 (node (main) x) S 4200 4242 4200 0 -1 4194560 1 0 0 0 1234 567 0 0 20 0 11 0 100 200 300';
    expect(parseProcStatTicks(stat)).toBe(1234 + 567);
    expect(parseProcStatPpid(stat)).toBe(4200);
    const status = 'Name:\tnode\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n';
    expect(parseStatusKb(status, 'VmRSS')).toBe(100 * 1024 * 1024);
    expect(parseStatusKb(status, 'VmHWM')).toBe(200 * 1024 * 1024);
    expect(parseStatusKb(status, 'VmSwap')).toBeUndefined();
    expect(cpuPercent(150, 100, 2000)).toBe(75);
  });

  it('counts the signatures of a transaction in the default topology and bounds the tps', () => {
    const m = signatureModel({ endorsers: 2, peers: 2, orderers: 3, txPerBlock: 500, kind: 'submit' });
    // client: proposal, envelope, commit-status request; 2 endorsements; 3 block signatures / 500 tx.
    expect(m.signs).toBeCloseTo(3 + 2 + 3 / 500, 6);
    // proposal ×2 endorsers; each endorsement by the other peer only (its signer remembers it);
    // envelope: gateway + orderer + the other peer (the gateway's peer has it cached); commit status 1; blocks 2/500.
    expect(m.verifies).toBeCloseTo(2 + 2 + 3 + 1 + 2 / 500, 6);
    const e = signatureModel({ endorsers: 2, peers: 2, orderers: 3, txPerBlock: 500, kind: 'evaluate' });
    expect([e.signs, e.verifies]).toEqual([1, 1]);
    // 1 core signing 10,000/s and verifying 5,000/s: 5/10000 + 11/5000 = 2.7 ms per tx → ~370 tps.
    const simple = { signs: 5, verifies: 11, lines: [] };
    expect(cryptoBoundTps(simple, 10_000, 5_000, 1)).toBeCloseTo(1000 / 2.7, 6);
    expect(cryptoBoundTps(simple, 10_000, 5_000, 2)).toBeCloseTo(2000 / 2.7, 6);
  });

  it('reads how many organizations an endorsement policy needs', () => {
    expect(endorsersRequired('MAJORITY Endorsement', 2)).toBe(2);
    expect(endorsersRequired('MAJORITY Endorsement', 3)).toBe(2);
    expect(endorsersRequired('ANY Endorsement', 3)).toBe(1);
    expect(endorsersRequired('ALL Endorsement', 3)).toBe(3);
    expect(endorsersRequired("AND('Org1MSP.peer', 'Org2MSP.peer')", 2)).toBe(2);
    expect(endorsersRequired("OR('Org1MSP.peer', 'Org2MSP.peer')", 2)).toBe(1);
    expect(endorsersRequired("OutOf(2, 'A.peer', 'B.peer', 'C.peer')", 3)).toBe(2);
  });
});

function input(ops: OpRecord[]): BenchInput {
  return {
    options: parseBenchOptions({ workload: 'mixed', durationS: '2', warmupS: '0', concurrency: '4' }),
    startedAt: '2026-01-01T00:00:00.000Z',
    machine: { cores: 2, cpuModel: 'test', node: 'v20', loadavgBefore: [1, 1, 1], loadavgAfter: [1, 1, 1] },
    topology: {
      config: 'default.yaml',
      orgs: 2,
      peers: 2,
      orderers: 3,
      endorsers: 2,
      endorsementPolicy: 'MAJORITY Endorsement',
      tls: true,
      batch: { timeout: '250 ms', maxMessageCount: 500, preferredMaxBytes: '2 MB' },
    },
    network: 'attached',
    pool: { requested: 10, created: 10, seconds: 1, failures: {} },
    warmupOps: 0,
    measureFrom: 10_000,
    ops,
    failureSamples: { MVCC_READ_CONFLICT: 'read conflict <script>', UNAVAILABLE: 'not in the window' },
    nodes: [
      {
        name: 'peer0.org1.example.com',
        kind: 'peer',
        pid: 1,
        cpuPercent: 50,
        idleCpuPercent: 10,
        peakRssBytes: 100 * 1024 * 1024,
      },
    ],
    clients: [{ name: 'worker0', kind: 'client', pid: 2, cpuPercent: 6, peakRssBytes: 50 * 1024 * 1024 }],
    crypto: { signPerSec: 10_000, verifyPerSec: 5_000 },
  };
}

describe('bench report', () => {
  const ops: OpRecord[] = [
    [10_100, 100, 'VALID', 5, 's', 20, 30],
    [10_900, 300, 'VALID', 5, 's', 40, 60],
    [11_200, 200, 'VALID', 6, 's', 30, 50],
    [11_500, 250, 'MVCC_READ_CONFLICT', 6, 's'],
    [11_600, 5, 'OK', -1, 'e'],
    [11_700, 7, 'OK', -1, 'e'],
  ];

  it('computes valid tps, latency, failures by code, blocks and the share of the crypto bound', () => {
    const r = buildReport(input(ops));
    expect(r.results.validTps).toBe(1.5);
    expect(r.results.evaluateTps).toBe(1);
    expect(r.results.submitLatencyMs).toMatchObject({ count: 3, p50: 200, max: 300 });
    expect(r.results.submitPhasesMs.endorse).toMatchObject({ count: 3, p50: 30, max: 40 });
    expect(r.results.submitPhasesMs.submit).toMatchObject({ p50: 50 });
    expect(r.results.submitPhasesMs.commitWait).toMatchObject({ p50: 120, max: 200 });
    expect(r.results.failures).toEqual({ MVCC_READ_CONFLICT: 1 });
    expect(r.results.mvccConflicts).toBe(1);
    // Only samples of failures that happened in the window are kept.
    expect(Object.keys(r.results.failureSamples)).toEqual(['MVCC_READ_CONFLICT']);
    expect(r.results.blocks).toBe(2);
    expect(r.results.txPerBlock).toBe(2);
    expect(r.series.validTps).toEqual([2, 1]);
    expect(r.series.failedPerSec).toEqual([0, 1]);
    // 6 ops in 2 s; the peer used 40% of a core above idle → 0.8 s / 6 ops; the client 6% → 0.12 s / 6.
    expect(r.cpuPerOp.nodesMs).toBeCloseTo(800 / 6, 6);
    expect(r.cpuPerOp.clientsMs).toBeCloseTo(120 / 6, 6);
    expect(r.cpuPerOp.projectedTps).toBeCloseTo(2000 / (920 / 6), 6);
    expect(r.crypto.boundTps).toBeGreaterThan(0);
    // 2.5 ops/s reached of a bound of several hundred.
    expect(r.crypto.share).toBeCloseTo(2.5 / r.crypto.boundTps, 9);
    const text = formatReport(r);
    expect(text).toMatch(/committed VALID: 1\.5 tps/);
    expect(text).toMatch(/p50 200 ms/);
    expect(text).toMatch(/endorse 30 \/ 40 ms, submit to the orderer 50 \/ 60 ms, commit-status wait 120 \/ 200 ms/);
    expect(text).toMatch(/MVCC_READ_CONFLICT 1/);
    expect(text).toContain('CPU  50.0% (10.0%)  peak RSS  100 MB');
    expect(text).toMatch(/CPU per operation: 133\.3 ms in the nodes \(above idle\) \+ 20\.0 ms in the clients/);
  });

  it('says so when nothing completed inside the window, instead of printing empty figures', () => {
    const r = buildReport(input([]));
    expect(r.results.validTps).toBe(0);
    expect(formatReport(r)).toMatch(/nothing completed inside the 2 s window .*run longer \(--duration\)/);
    expect(renderHtml(r)).toContain('<svg');
  });

  it('renders a self-contained HTML page with both charts and escaped text', () => {
    const html = renderHtml(buildReport(input(ops)));
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html.match(/<svg /g)?.length).toBe(3); // throughput + submit and evaluate histograms
    expect(html).toContain('<polyline');
    expect(html).toContain('<rect');
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/i);
    expect(html).not.toContain('read conflict <script>');
    expect(html).toContain('read conflict &#60;script&#62;');
  });
});
