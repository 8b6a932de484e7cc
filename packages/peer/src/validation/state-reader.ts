/**
 * What validation reads from the committed ledger. The ledger's state DB implements this; the
 * validator never sees level or any other storage.
 *
 * Hashed private data (the public hashes of private writes) lives in the state DB under the
 * namespace `hashedNamespace(chaincode, collection)` with the key `hex(keyHash)`, so MVCC and
 * key-level endorsement work on it through the same three methods as public data.
 */
import type { Version } from '@loom/common';

export interface StateReader {
  /** The committed version of a key, undefined when the key does not exist (or was deleted). */
  getVersion(namespace: string, key: string): Promise<Version | undefined>;
  /** The committed metadata of a key (e.g. `VALIDATION_PARAMETER`), undefined when it has none. */
  getMetadata(namespace: string, key: string): Promise<Map<string, Uint8Array> | undefined>;
  /**
   * Committed keys in `[startKey, endKey)` in `compareKeys` order (Unicode code point order, which
   * is UTF-8 byte order); an empty `endKey` means no upper bound.
   */
  rangeScan(namespace: string, startKey: string, endKey: string): AsyncIterable<{ key: string; version: Version }>;
  /** True when a block already committed to the ledger holds a transaction with this id. */
  isTxIdCommitted(txId: string): Promise<boolean>;
  /**
   * Optional batch form of `isTxIdCommitted` (one answer per txId, in order; level's getMany). The
   * validator looks up a block's txIds with it; without it, one `isTxIdCommitted` per txId.
   */
  areTxIdsCommitted?(txIds: readonly string[]): Promise<boolean[]>;
  /**
   * Optional batch read of many keys of one namespace in one pass (level's getMany): per key its
   * committed version and metadata (undefined metadata when it has none), undefined when absent.
   * The validator prefetches a block's keys with it; without it, it reads them concurrently through
   * `getVersion` and `getMetadata`.
   */
  getVersionsAndMetadata?(namespace: string, keys: readonly string[]): Promise<(CommittedKey | undefined)[]>;
}

/** A committed key as the validator needs it. */
export interface CommittedKey {
  readonly version: Version;
  readonly metadata: ReadonlyMap<string, Uint8Array> | undefined;
}

/** Metadata entry holding a key-level (state-based) endorsement policy. */
export const VALIDATION_PARAMETER = 'VALIDATION_PARAMETER';

/** The state DB namespace holding the hashes of a collection's private writes (Fabric's `ns$$hcoll`). */
export function hashedNamespace(namespace: string, collection: string): string {
  return `${namespace}$$h${collection}`;
}

/**
 * Total order of state keys: Unicode code point order, which equals the UTF-8 byte order of the
 * keys as level stores them. Plain `<` on JS strings compares UTF-16 code units and would put
 * U+10FFFF (the composite-key upper bound) below U+E000..U+FFFF.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    // A surrogate (astral code point) ranks above every BMP code unit; two surrogates compare as code units.
    if (xs !== ys) return xs ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}
