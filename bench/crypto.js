// Signature and hash throughput, node:crypto (OpenSSL) beside @noble (pure JS), one core.
// `npm run bench -- crypto [seconds-per-measurement]` (default 1). Reads the built dist of @loom/common.
import { randomBytes } from 'node:crypto';
import { sha256 as nodeSha256 } from '../packages/common/dist/crypto/hash.js';
import * as noble from '../packages/common/dist/crypto/portable.js';
import {
  generateKeyPair,
  privateKeyToPem,
  publicKeyToDer,
  sign as nodeSign,
  verify as nodeVerify,
} from '../packages/common/dist/crypto/signing.js';

const MAX_ITERATIONS = 5_000_000;

/** Calls `fn` in batches until `seconds` pass (or a hard iteration cap); returns ops/s. */
function rate(fn, seconds) {
  for (let i = 0; i < 20; i++) fn(i); // warm up
  const budget = seconds * 1e9;
  const start = process.hrtime.bigint();
  let n = 0;
  let batch = 16;
  let elapsed = 0;
  while (elapsed < budget && n < MAX_ITERATIONS) {
    for (let i = 0; i < batch; i++) fn(n + i);
    n += batch;
    elapsed = Number(process.hrtime.bigint() - start);
    if (elapsed < budget / 20) batch *= 2;
  }
  return (n * 1e9) / elapsed;
}

const fmt = (x) => `${Math.round(x).toLocaleString('en-US')} ops/s`;

export async function run(args = []) {
  const seconds = Number(args[0] ?? 1);
  if (!(seconds > 0 && seconds <= 60)) throw new Error('seconds must be in (0, 60]');

  const { privateKey, publicKey } = generateKeyPair();
  const secretKey = noble.secretKeyFromPem(privateKeyToPem(privateKey));
  const point = noble.toPublicPoint(publicKeyToDer(publicKey));

  // Distinct messages so nothing is served from a cache; signatures made once for the verify rows.
  const messages = Array.from({ length: 256 }, () => new Uint8Array(randomBytes(200)));
  const sigs = messages.map((m) => nodeSign(privateKey, m));
  const small = new Uint8Array(randomBytes(64));
  const block = new Uint8Array(randomBytes(64 * 1024));

  for (let i = 0; i < sigs.length; i++) {
    if (!noble.verify(point, messages[i], sigs[i])) throw new Error('interop check failed');
  }

  const rows = [
    [
      'ECDSA P-256 sign (200 B)',
      (i) => nodeSign(privateKey, messages[i & 255]),
      (i) => noble.sign(secretKey, messages[i & 255]),
    ],
    [
      'ECDSA P-256 verify (200 B)',
      (i) => nodeVerify(publicKey, messages[i & 255], sigs[i & 255]),
      (i) => noble.verify(point, messages[i & 255], sigs[i & 255]),
    ],
    ['SHA-256 (64 B)', () => nodeSha256(small), () => noble.sha256(small)],
    ['SHA-256 (64 KiB)', () => nodeSha256(block), () => noble.sha256(block)],
  ];

  const header = ['operation', 'node:crypto', '@noble', 'ratio'];
  const table = [header];
  for (const [label, nodeFn, nobleFn] of rows) {
    const a = rate(nodeFn, seconds);
    const b = rate(nobleFn, seconds);
    table.push([label, fmt(a), fmt(b), `${(a / b).toFixed(1)}x`]);
  }
  const widths = header.map((_, c) => Math.max(...table.map((r) => r[c].length)));
  const line = (r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  console.log(`crypto bench: ${seconds}s per measurement, node ${process.version}`);
  console.log(line(table[0]));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of table.slice(1)) console.log(line(r));
}
