/**
 * The benchmark report: figures computed from the operations the workers recorded, printed as text,
 * written as JSON and as a self-contained HTML page (inline SVG charts, no external resources).
 */
import type { BenchOptions } from './options.js';
import type { OpRecord } from './protocol.js';
import {
  cryptoBoundTps,
  type HistogramBin,
  type LatencySummary,
  latencyHistogram,
  perSecond,
  type SignatureModel,
  signatureModel,
  summarizeLatencies,
} from './stats.js';

export interface NodeUsage {
  readonly name: string;
  readonly kind: string;
  readonly pid: number;
  /** Mean CPU over the measured window; 100 = one core. */
  readonly cpuPercent: number;
  /** Peak resident set over the process's life (VmHWM), bytes. */
  readonly peakRssBytes: number;
  /** CPU with the network idle, just before the warm-up (nodes only). */
  readonly idleCpuPercent?: number;
}

export interface Topology {
  readonly config: string;
  readonly orgs: number;
  readonly peers: number;
  readonly orderers: number;
  readonly endorsers: number;
  readonly endorsementPolicy: string;
  readonly tls: boolean;
  readonly batch: { readonly timeout: string; readonly maxMessageCount: number; readonly preferredMaxBytes: string };
}

export interface BenchInput {
  readonly options: BenchOptions;
  readonly startedAt: string;
  readonly machine: {
    readonly cores: number;
    readonly cpuModel: string;
    readonly node: string;
    readonly loadavgBefore: readonly number[];
    readonly loadavgAfter: readonly number[];
  };
  readonly topology: Topology;
  readonly network: 'started' | 'attached';
  readonly pool: {
    readonly requested: number;
    readonly created: number;
    readonly seconds: number;
    readonly failures: Record<string, number>;
  };
  readonly warmupOps: number;
  readonly measureFrom: number;
  readonly ops: readonly OpRecord[];
  readonly failureSamples: Record<string, string>;
  readonly nodes: readonly NodeUsage[];
  readonly clients: readonly NodeUsage[];
  readonly crypto: { readonly signPerSec: number; readonly verifyPerSec: number };
}

export interface BenchReport {
  readonly version: 1;
  readonly startedAt: string;
  readonly options: BenchOptions;
  readonly machine: BenchInput['machine'];
  readonly topology: Topology;
  readonly network: 'started' | 'attached';
  readonly pool: BenchInput['pool'];
  readonly warmupOps: number;
  readonly results: {
    readonly durationS: number;
    /** Committed VALID transactions per second. */
    readonly validTps: number;
    /** Successful evaluations per second. */
    readonly evaluateTps: number;
    readonly submits: number;
    readonly valid: number;
    readonly evaluates: number;
    readonly evaluatesOk: number;
    readonly mvccConflicts: number;
    /** Failures by code: validation codes other than VALID, and error codes. */
    readonly failures: Record<string, number>;
    readonly failureSamples: Record<string, string>;
    /** Latency of VALID submits (endorse → submit → commit status). */
    readonly submitLatencyMs: LatencySummary;
    /** Where VALID submits spent their time: endorse call, submit call, commit-status wait. */
    readonly submitPhasesMs: {
      readonly endorse: LatencySummary;
      readonly submit: LatencySummary;
      readonly commitWait: LatencySummary;
    };
    /** Latency of successful evaluates. */
    readonly evaluateLatencyMs: LatencySummary;
    readonly blocks: number;
    readonly txPerBlock: number;
  };
  readonly series: { readonly validTps: number[]; readonly evaluateTps: number[]; readonly failedPerSec: number[] };
  readonly histograms: { readonly submitMs: HistogramBin[]; readonly evaluateMs: HistogramBin[] };
  readonly nodes: readonly NodeUsage[];
  readonly clients: readonly NodeUsage[];
  /**
   * CPU milliseconds each completed operation cost: the nodes' CPU above their idle baseline, and
   * the client workers'; and the ops/s the machine's cores would give at that cost. CPU time per
   * operation depends far less on other load than throughput does.
   */
  readonly cpuPerOp: { readonly nodesMs: number; readonly clientsMs: number; readonly projectedTps: number };
  readonly crypto: {
    readonly signPerSec: number;
    readonly verifyPerSec: number;
    readonly cores: number;
    readonly submit: SignatureModel;
    readonly evaluate: SignatureModel;
    /** TPS the cores could reach doing only these signatures, for this run's operation mix. */
    readonly boundTps: number;
    /** Achieved (valid submits + successful evaluates per second) / boundTps. */
    readonly share: number;
  };
}

export function buildReport(input: BenchInput): BenchReport {
  const { options } = input;
  const durationS = options.durationS;
  const submits = input.ops.filter((o) => o[4] === 's');
  const evaluates = input.ops.filter((o) => o[4] === 'e');
  const valid = submits.filter((o) => o[2] === 'VALID');
  const ok = evaluates.filter((o) => o[2] === 'OK');
  const phased = valid.filter((o) => o[5] !== undefined && o[6] !== undefined);
  const failed = input.ops.filter((o) => o[2] !== 'VALID' && o[2] !== 'OK');
  const failures: Record<string, number> = {};
  for (const o of failed) failures[o[2]] = (failures[o[2]] ?? 0) + 1;
  const blocks = new Set(submits.filter((o) => o[3] >= 0).map((o) => o[3]));
  const committed = submits.filter((o) => o[3] >= 0).length;
  const txPerBlock = blocks.size > 0 ? committed / blocks.size : 1;
  const t = input.topology;
  const submit = signatureModel({
    endorsers: t.endorsers,
    peers: t.peers,
    orderers: t.orderers,
    txPerBlock,
    kind: 'submit',
  });
  const evaluate = signatureModel({
    endorsers: t.endorsers,
    peers: t.peers,
    orderers: t.orderers,
    txPerBlock,
    kind: 'evaluate',
  });
  const cores = input.machine.cores;
  const { signPerSec, verifyPerSec } = input.crypto;
  // The bound for this run's mix: seconds of crypto per operation, weighted by what was done.
  const nS = valid.length;
  const nE = ok.length;
  const perOp = (m: SignatureModel) => cores / cryptoBoundTps(m, signPerSec, verifyPerSec, cores);
  const boundTps =
    nS + nE === 0
      ? cryptoBoundTps(options.workload === 'read' ? evaluate : submit, signPerSec, verifyPerSec, cores)
      : cores / ((nS * perOp(submit) + nE * perOp(evaluate)) / (nS + nE));
  const achieved = (nS + nE) / durationS;
  return {
    version: 1,
    startedAt: input.startedAt,
    options,
    machine: input.machine,
    topology: t,
    network: input.network,
    pool: input.pool,
    warmupOps: input.warmupOps,
    results: {
      durationS,
      validTps: nS / durationS,
      evaluateTps: nE / durationS,
      submits: submits.length,
      valid: nS,
      evaluates: evaluates.length,
      evaluatesOk: nE,
      mvccConflicts: failures.MVCC_READ_CONFLICT ?? 0,
      failures,
      failureSamples: Object.fromEntries(Object.entries(input.failureSamples).filter(([k]) => k in failures)),
      submitLatencyMs: summarizeLatencies(valid.map((o) => o[1])),
      submitPhasesMs: {
        endorse: summarizeLatencies(phased.map((o) => o[5]!)),
        submit: summarizeLatencies(phased.map((o) => o[6]!)),
        commitWait: summarizeLatencies(phased.map((o) => o[1] - o[5]! - o[6]!)),
      },
      evaluateLatencyMs: summarizeLatencies(ok.map((o) => o[1])),
      blocks: blocks.size,
      txPerBlock,
    },
    series: {
      validTps: perSecond(
        valid.map((o) => o[0]),
        input.measureFrom,
        durationS,
      ),
      evaluateTps: perSecond(
        ok.map((o) => o[0]),
        input.measureFrom,
        durationS,
      ),
      failedPerSec: perSecond(
        failed.map((o) => o[0]),
        input.measureFrom,
        durationS,
      ),
    },
    histograms: {
      submitMs: latencyHistogram(valid.map((o) => o[1])),
      evaluateMs: latencyHistogram(ok.map((o) => o[1])),
    },
    nodes: input.nodes,
    clients: input.clients,
    cpuPerOp: cpuPerOp(input, cores),
    crypto: {
      signPerSec,
      verifyPerSec,
      cores,
      submit,
      evaluate,
      boundTps,
      share: boundTps > 0 ? achieved / boundTps : 0,
    },
  };
}

function cpuPerOp(input: BenchInput, cores: number): BenchReport['cpuPerOp'] {
  const ops = input.ops.length;
  const ms = (usage: readonly NodeUsage[]) => {
    const busy = usage.reduce((sum, u) => sum + Math.max(0, u.cpuPercent - (u.idleCpuPercent ?? 0)), 0);
    return ops > 0 ? ((busy / 100) * input.options.durationS * 1000) / ops : Number.NaN;
  };
  const nodesMs = ms(input.nodes);
  const clientsMs = ms(input.clients);
  return { nodesMs, clientsMs, projectedTps: (cores * 1000) / (nodesMs + clientsMs) };
}

const n0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-');
const n1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const mb = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MB`;
const lat = (l: LatencySummary) =>
  l.count === 0
    ? 'none'
    : `p50 ${n0(l.p50)} ms, p95 ${n0(l.p95)} ms, p99 ${n0(l.p99)} ms, max ${n0(l.max)} ms (${n0(l.count)} ops)`;

/** The report as the lines a terminal shows. */
export function formatReport(r: BenchReport): string {
  const o = r.options;
  const res = r.results;
  const lines = [
    `Loom e2e benchmark — workload ${o.workload}, ${o.concurrency} in flight over ${o.workers} client processes, ${o.warmupS} s warm-up + ${res.durationS} s measured`,
    `topology: ${r.topology.orderers} Raft orderers, ${r.topology.orgs} orgs × ${r.topology.peers / Math.max(1, r.topology.orgs)} peer, ${r.topology.endorsers} endorsements/tx (${r.topology.endorsementPolicy}), TLS ${r.topology.tls ? 'on' : 'off'}, batch ${r.topology.batch.timeout} / ${r.topology.batch.maxMessageCount} msgs / ${r.topology.batch.preferredMaxBytes} (${r.topology.config}, network ${r.network})`,
    `machine: ${r.machine.cores} cores (${r.machine.cpuModel}), node ${r.machine.node}, load average before ${r.machine.loadavgBefore.map((x) => x.toFixed(2)).join(' ')}, after ${r.machine.loadavgAfter.map((x) => x.toFixed(2)).join(' ')}`,
  ];
  if (r.pool.requested > 0)
    lines.push(`pool: ${n0(r.pool.created)} of ${n0(r.pool.requested)} assets created in ${n1(r.pool.seconds)} s`);
  lines.push('');
  if (res.submits + res.evaluates === 0) {
    lines.push(
      `nothing completed inside the ${res.durationS} s window (${r.warmupOps} operations completed in the warm-up): operations take longer than the window — run longer (--duration) or with less load`,
    );
  }
  if (res.submits > 0) {
    lines.push(
      `committed VALID: ${n1(res.validTps)} tps  (${n0(res.valid)} of ${n0(res.submits)} submits; ${n0(res.blocks)} blocks, ${n1(res.txPerBlock)} tx/block)`,
    );
    lines.push(`submit latency:  ${lat(res.submitLatencyMs)}`);
    const ph = res.submitPhasesMs;
    if (ph.endorse.count > 0)
      lines.push(
        `  of which (p50 / p99): endorse ${n0(ph.endorse.p50)} / ${n0(ph.endorse.p99)} ms, submit to the orderer ${n0(ph.submit.p50)} / ${n0(ph.submit.p99)} ms, commit-status wait ${n0(ph.commitWait.p50)} / ${n0(ph.commitWait.p99)} ms`,
      );
  }
  if (res.evaluates > 0) {
    lines.push(
      `evaluate:        ${n1(res.evaluateTps)} tps  (${n0(res.evaluatesOk)} of ${n0(res.evaluates)} evaluates)`,
    );
    lines.push(`evaluate latency: ${lat(res.evaluateLatencyMs)}`);
  }
  if (r.options.workload === 'transfer' || r.options.workload === 'mixed')
    lines.push(`MVCC read conflicts: ${n0(res.mvccConflicts)}`);
  const fails = Object.entries(res.failures).sort((a, b) => b[1] - a[1]);
  lines.push(fails.length === 0 ? 'failures: none' : `failures: ${fails.map(([c, k]) => `${c} ${n0(k)}`).join(', ')}`);
  for (const [c, m] of Object.entries(res.failureSamples)) lines.push(`  ${c}: ${m}`);
  lines.push(
    '',
    'processes (CPU over the measured window, 100% = one core, idle baseline in brackets; peak RSS over the life of the process):',
  );
  for (const n of [...r.nodes, ...r.clients])
    lines.push(
      `  ${n.kind.padEnd(10)} ${n.name.padEnd(34)} pid ${String(n.pid).padEnd(7)} CPU ${n1(n.cpuPercent).padStart(5)}% ${n.idleCpuPercent !== undefined ? `(${n1(n.idleCpuPercent).padStart(4)}%)` : '       '}  peak RSS ${mb(n.peakRssBytes).padStart(7)}`,
    );
  const u = r.cpuPerOp;
  lines.push(
    `CPU per operation: ${n1(u.nodesMs)} ms in the nodes (above idle) + ${n1(u.clientsMs)} ms in the clients → ${n0(u.projectedTps)} ops/s if the ${r.machine.cores} cores did nothing else`,
  );
  const c = r.crypto;
  lines.push(
    '',
    `crypto bound: node:crypto P-256 sign ${n0(c.signPerSec)}/s, verify ${n0(c.verifyPerSec)}/s per core × ${c.cores} cores`,
    `  per committed transaction: ${n1(c.submit.signs)} signs + ${n1(c.submit.verifies)} verifies:`,
    ...c.submit.lines.map((l) => `    ${n1(l.signs).padStart(5)} sign ${n1(l.verifies).padStart(5)} verify  ${l.what}`),
    `  per evaluate: ${n1(c.evaluate.signs)} sign + ${n1(c.evaluate.verifies)} verify`,
    `  bound for this mix: ${n0(c.boundTps)} tps; reached ${(c.share * 100).toFixed(1)}%`,
  );
  return lines.join('\n');
}

const esc = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** A line chart of per-second series as inline SVG. */
function lineChart(series: { name: string; color: string; values: number[] }[], yLabel: string): string {
  const W = 720;
  const H = 260;
  const L = 56;
  const B = 36;
  const len = Math.max(1, ...series.map((s) => s.values.length));
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const x = (i: number) => L + ((W - L - 12) * (i + 0.5)) / len;
  const y = (v: number) => H - B - ((H - B - 12) * v) / max;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => max * f);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img">`,
    ...ticks.map(
      (v) =>
        `<line x1="${L}" x2="${W - 12}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/><text x="${L - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" font-size="11">${n0(v)}</text>`,
    ),
    `<text x="14" y="${H / 2}" transform="rotate(-90 14 ${H / 2})" text-anchor="middle" font-size="12">${esc(yLabel)}</text>`,
    `<text x="${(W + L) / 2}" y="${H - 6}" text-anchor="middle" font-size="12">second of the measured window</text>`,
  ];
  for (let i = 0; i < len; i += Math.max(1, Math.ceil(len / 10)))
    parts.push(`<text x="${x(i).toFixed(1)}" y="${H - B + 16}" text-anchor="middle" font-size="11">${i + 1}</text>`);
  series.forEach((s, k) => {
    if (s.values.every((v) => v === 0)) return;
    const pts = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts}"/>`);
    parts.push(`<text x="${L + 8 + k * 150}" y="14" font-size="12" fill="${s.color}">■ ${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

/** A bar chart of a latency histogram as inline SVG. */
function histogramChart(bins: HistogramBin[], color: string): string {
  const W = 720;
  const H = 240;
  const L = 56;
  const B = 36;
  if (bins.length === 0) return '<p>no samples</p>';
  const max = Math.max(1, ...bins.map((b) => b.count));
  const bw = (W - L - 12) / bins.length;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img">`,
  ];
  bins.forEach((b, i) => {
    const h = ((H - B - 12) * b.count) / max;
    const x0 = L + i * bw;
    parts.push(
      `<rect x="${(x0 + 2).toFixed(1)}" y="${(H - B - h).toFixed(1)}" width="${(bw - 4).toFixed(1)}" height="${h.toFixed(1)}" fill="${color}"><title>≤ ${b.le} ms: ${b.count}</title></rect>`,
      `<text x="${(x0 + bw / 2).toFixed(1)}" y="${H - B + 14}" text-anchor="middle" font-size="10">≤${b.le}</text>`,
      b.count > 0
        ? `<text x="${(x0 + bw / 2).toFixed(1)}" y="${(H - B - h - 3).toFixed(1)}" text-anchor="middle" font-size="10">${b.count}</text>`
        : '',
    );
  });
  parts.push(
    `<text x="${(W + L) / 2}" y="${H - 6}" text-anchor="middle" font-size="12">latency bin (ms, upper bound)</text>`,
    '</svg>',
  );
  return parts.join('');
}

/** The self-contained HTML report. */
export function renderHtml(r: BenchReport): string {
  const res = r.results;
  const rows = [...r.nodes, ...r.clients]
    .map(
      (n) =>
        `<tr><td>${esc(n.kind)}</td><td>${esc(n.name)}</td><td>${n.pid}</td><td>${n1(n.cpuPercent)}%</td><td>${mb(n.peakRssBytes)}</td></tr>`,
    )
    .join('');
  const failures = Object.entries(res.failures)
    .map(([c, k]) => `<tr><td>${esc(c)}</td><td>${k}</td><td>${esc(res.failureSamples[c] ?? '')}</td></tr>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Loom benchmark — ${esc(r.options.workload)} — ${esc(r.startedAt)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:800px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:12px}</style>
</head><body>
<h1>Loom end-to-end benchmark</h1>
<p>Workload <b>${esc(r.options.workload)}</b>, ${r.options.concurrency} transactions in flight over ${r.options.workers} client processes,
${r.options.warmupS} s warm-up, ${res.durationS} s measured, started ${esc(r.startedAt)}.
Load average before ${r.machine.loadavgBefore.map((x) => x.toFixed(2)).join(' ')}.</p>
<h2>Summary</h2>
<pre>${esc(formatReport(r))}</pre>
<h2>Throughput over time</h2>
${lineChart(
  [
    { name: 'committed VALID tps', color: '#1f77b4', values: r.series.validTps },
    { name: 'evaluate tps', color: '#2ca02c', values: r.series.evaluateTps },
    { name: 'failed / s', color: '#d62728', values: r.series.failedPerSec },
  ],
  'operations per second',
)}
<h2>Latency distribution</h2>
${res.submits > 0 ? `<h3>Submit (endorse → order → commit), VALID</h3>${histogramChart(r.histograms.submitMs, '#1f77b4')}` : ''}
${res.evaluates > 0 ? `<h3>Evaluate</h3>${histogramChart(r.histograms.evaluateMs, '#2ca02c')}` : ''}
<h2>Processes</h2>
<table><tr><th>kind</th><th>name</th><th>pid</th><th>CPU (measured window)</th><th>peak RSS</th></tr>${rows}</table>
<h2>Failures</h2>
${failures ? `<table><tr><th>code</th><th>count</th><th>example</th></tr>${failures}</table>` : '<p>none</p>'}
<script type="application/json" id="report">${JSON.stringify(r).replace(/</g, '\\u003c')}</script>
</body></html>
`;
}
