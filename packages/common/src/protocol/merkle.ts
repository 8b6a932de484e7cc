/**
 * Binary Merkle trees in the manner of RFC 6962 (Certificate Transparency): leaf hash
 * H(0x00 ‖ data), interior H(0x01 ‖ left ‖ right), the tree over n leaves split at the largest
 * power of two below n. Used for a block's dataHash (so one transaction can be proven in a block)
 * and by the peer's ledger accumulator. The hash function is injected so the peer uses node:crypto
 * and browsers use @noble/hashes; this file stays pure.
 */
import { type Bytes, bytesEqual, hashConcat } from '../encoding.js';

export type HashFn = (data: Bytes) => Bytes;

const LEAF = Uint8Array.of(0);
const NODE = Uint8Array.of(1);

export const merkleLeafHash = (h: HashFn, data: Bytes): Bytes => hashConcat(h, LEAF, data);
export const merkleNodeHash = (h: HashFn, l: Bytes, r: Bytes): Bytes => hashConcat(h, NODE, l, r);

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** Root over already-hashed leaves. The empty tree's root is H(""). */
export function merkleRootOfLeafHashes(h: HashFn, leaves: readonly Bytes[]): Bytes {
  if (leaves.length === 0) return h(new Uint8Array(0));
  let level: Bytes[] = [...leaves];
  // Bottom-up pairing gives the same root as RFC 6962's recursive split: an odd node is carried up.
  while (level.length > 1) {
    const next: Bytes[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(merkleNodeHash(h, level[i]!, level[i + 1]!));
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    level = next;
  }
  return level[0]!;
}

export function merkleRoot(h: HashFn, data: readonly Bytes[]): Bytes {
  return merkleRootOfLeafHashes(
    h,
    data.map((d) => merkleLeafHash(h, d)),
  );
}

/** Audit path for leaf `index` of `n` leaves: sibling hashes from the leaf up (RFC 6962 §2.1.1). */
export function merkleAuditPath(h: HashFn, leaves: readonly Bytes[], index: number): Bytes[] {
  if (index < 0 || index >= leaves.length) throw new RangeError('leaf index out of range');
  const path = (lo: number, hi: number, i: number): Bytes[] => {
    const n = hi - lo;
    if (n === 1) return [];
    const k = largestPowerOfTwoBelow(n);
    if (i < k) return [...path(lo, lo + k, i), merkleRootOfLeafHashes(h, leaves.slice(lo + k, hi))];
    return [...path(lo + k, hi, i - k), merkleRootOfLeafHashes(h, leaves.slice(lo, lo + k))];
  };
  return path(0, leaves.length, index);
}

/** Recomputes the root from a leaf hash and its audit path; true when it equals `root`. */
export function verifyMerkleAuditPath(
  h: HashFn,
  leafHash: Bytes,
  index: number,
  treeSize: number,
  path: readonly Bytes[],
  root: Bytes,
): boolean {
  if (index < 0 || index >= treeSize) return false;
  let fn = index;
  let sn = treeSize - 1;
  let r = leafHash;
  for (const p of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = merkleNodeHash(h, p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = merkleNodeHash(h, r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && bytesEqual(r, root);
}
