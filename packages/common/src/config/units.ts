/**
 * Human-written durations and sizes, as in Fabric's configtx.yaml: `250ms`, `2s`, `1m30s`;
 * `10 MB`, `512 KB`. Sizes use binary multiples (1 MB = 1024 × 1024 bytes), as Fabric does.
 */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION = /^\s*((?:\d+(?:\.\d+)?\s*(?:ms|s|m|h)\s*)+)$/i;
const DURATION_PART = /(\d+(?:\.\d+)?)\s*(ms|s|m|h)/gi;

/** Milliseconds in a duration string (`250ms`, `1.5s`, `1m30s`); a bare number is milliseconds. */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new RangeError(`invalid duration ${input}`);
    return input;
  }
  if (/^\s*\d+\s*$/.test(input)) return Number(input);
  if (!DURATION.test(input)) {
    throw new RangeError(`invalid duration '${input}' (expected e.g. '250ms', '2s', '1m30s')`);
  }
  let ms = 0;
  for (const m of input.matchAll(DURATION_PART)) ms += Number(m[1]) * DURATION_UNITS[m[2]!.toLowerCase()]!;
  return Math.round(ms);
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1024,
  kib: 1024,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};
const SIZE = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i;

/** Bytes in a size string (`10 MB`, `512KB`, `2 MiB`); a bare number is bytes. */
export function parseByteSize(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isInteger(input) || input < 0) throw new RangeError(`invalid size ${input}`);
    return input;
  }
  const m = SIZE.exec(input);
  const unit = m ? SIZE_UNITS[(m[2] || 'b').toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new RangeError(`invalid size '${input}' (expected e.g. '10 MB', '512 KB', '4096')`);
  }
  return Math.round(Number(m[1]) * unit);
}
