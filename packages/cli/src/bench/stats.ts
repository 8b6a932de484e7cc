/** The benchmark's arithmetic: percentiles, per-second series, histograms, /proc readings. Pure. */

/** Nearest-rank percentile (p in 0..100) of ascending `sorted`; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  if (p <= 0) return sorted[0]!;
  if (p >= 100) return sorted[sorted.length - 1]!;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export interface LatencySummary {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

export function summarizeLatencies(values: readonly number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((s, v) => s + v, 0);
  return {
    count: sorted.length,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
  };
}

/** Events per second for each whole second of [start, start + seconds) (timestamps in ms). */
export function perSecond(times: readonly number[], startMs: number, seconds: number): number[] {
  const out = new Array<number>(Math.max(0, Math.ceil(seconds))).fill(0);
  for (const t of times) {
    const i = Math.floor((t - startMs) / 1000);
    if (i >= 0 && i < out.length) out[i]!++;
  }
  return out;
}

export interface HistogramBin {
  /** Upper bound of the bin, ms (inclusive). */
  readonly le: number;
  readonly count: number;
}

/** Log-spaced latency histogram (bins 1-2-5 per decade from 1 ms), empty tail bins dropped. */
export function latencyHistogram(values: readonly number[]): HistogramBin[] {
  const bounds: number[] = [];
  for (let d = 1; d <= 1e6; d *= 10) bounds.push(d, 2 * d, 5 * d);
  const counts = new Array<number>(bounds.length).fill(0);
  for (const v of values) {
    let i = bounds.findIndex((b) => v <= b);
    if (i < 0) i = bounds.length - 1;
    counts[i]!++;
  }
  let last = counts.length - 1;
  while (last > 0 && counts[last] === 0) last--;
  let first = 0;
  while (first < last && counts[first] === 0) first++;
  return bounds.slice(first, last + 1).map((le, i) => ({ le, count: counts[first + i]! }));
}

/** utime + stime (clock ticks) from the text of /proc/<pid>/stat. */
export function parseProcStatTicks(stat: string): number {
  // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error('unreadable /proc stat line');
  return utime + stime;
}

/** Parent pid (field 4) from the text of /proc/<pid>/stat. */
export function parseProcStatPpid(stat: string): number {
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** A `VmXXX:  1234 kB` field of /proc/<pid>/status, in bytes (undefined when absent). */
export function parseStatusKb(status: string, field: string): number | undefined {
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** CPU% (100 = one core busy) from a tick delta over a wall-clock interval. */
export function cpuPercent(ticks: number, ticksPerSecond: number, wallMs: number): number {
  if (wallMs <= 0) return 0;
  return (ticks / ticksPerSecond / (wallMs / 1000)) * 100;
}

export interface SignatureModel {
  /** ECDSA signatures made per transaction (the orderers' block signatures amortized). */
  readonly signs: number;
  readonly verifies: number;
  /** Where each comes from, for the report. */
  readonly lines: readonly { what: string; signs: number; verifies: number }[];
}

/**
 * Signatures per endorsed-and-committed transaction in a topology with `endorsers` endorsing
 * peers per transaction, `peers` committing peers, `orderers` consenters, `txPerBlock` average
 * transactions per block. For `evaluate` (a read), only the proposal is signed and verified once.
 */
export function signatureModel(t: {
  endorsers: number;
  peers: number;
  orderers: number;
  txPerBlock: number;
  kind: 'submit' | 'evaluate';
}): SignatureModel {
  const lines =
    t.kind === 'evaluate'
      ? [{ what: 'client proposal signature, verified by the evaluating peer', signs: 1, verifies: 1 }]
      : [
          { what: 'client proposal signature, verified by each endorser', signs: 1, verifies: t.endorsers },
          {
            // An endorser remembers the endorsement it signed and does not verify it at commit.
            what: 'endorsement signatures, verified by every committing peer but the one that signed it',
            signs: t.endorsers,
            verifies: t.endorsers * Math.max(0, t.peers - 1),
          },
          {
            // The gateway's check is cached: its own peer does not verify the envelope again at commit.
            what: 'client envelope signature, verified by the gateway, the orderer it reaches and every other committing peer',
            signs: 1,
            verifies: 2 + Math.max(0, t.peers - 1),
          },
          { what: 'client commit-status request signature, verified by the gateway', signs: 1, verifies: 1 },
          {
            what: `block signature of each orderer, verified by every peer (amortized over ${t.txPerBlock.toFixed(1)} tx/block)`,
            signs: t.orderers / Math.max(1, t.txPerBlock),
            verifies: t.peers / Math.max(1, t.txPerBlock),
          },
        ];
  return {
    signs: lines.reduce((s, l) => s + l.signs, 0),
    verifies: lines.reduce((s, l) => s + l.verifies, 0),
    lines,
  };
}

/**
 * Transactions per second the machine's cores could sustain doing nothing but these signatures:
 * `cores / (signs/signRate + verifies/verifyRate)`, rates per core.
 */
export function cryptoBoundTps(model: SignatureModel, signPerSec: number, verifyPerSec: number, cores: number) {
  const secondsPerTx = model.signs / signPerSec + model.verifies / verifyPerSec;
  return secondsPerTx > 0 ? cores / secondsPerTx : Number.POSITIVE_INFINITY;
}

/** Endorsing organizations a simple channel/chaincode policy needs out of `orgs` (ANY/MAJORITY/ALL, AND/OR/OutOf). */
export function endorsersRequired(rule: string | undefined, orgs: number): number {
  const r = (rule ?? 'MAJORITY Endorsement').trim();
  if (/^ANY\b/i.test(r)) return 1;
  if (/^ALL\b/i.test(r)) return orgs;
  if (/^MAJORITY\b/i.test(r)) return Math.floor(orgs / 2) + 1;
  const outOf = /^OutOf\(\s*(\d+)/i.exec(r);
  if (outOf) return Number(outOf[1]);
  const principals = (r.match(/'[^']+'/g) ?? []).length;
  if (/^AND\(/i.test(r)) return Math.max(1, principals);
  if (/^OR\(/i.test(r)) return 1;
  return orgs;
}
