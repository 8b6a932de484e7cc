/**
 * Order-preserving key layouts of the peer ledger. All stores live in ONE key-value store, each in
 * a sublevel (prefix `name` 0x00), so one atomic batch commits a block, its state updates, history,
 * index entries and the new heights together.
 *
 *   u64(n)   = n as 8 bytes big-endian (sorts numerically); u32 likewise with 4 bytes
 *   utf8(s)  = UTF-8 bytes of s (UTF-8 byte order is Unicode code point order)
 *
 * `blocks` 0x00 (block-store.ts)
 *   'n' u64(blockNum)                         → the encoded Block, bytes as received
 *   'c' u64(blockNum)                         → validation codes, one byte per transaction
 *   'x' bytes32(txId)                         → CBOR [blockNum, txNum, validationCode] (first occurrence),
                                               for a txId of 64 lowercase hex digits, in ledgers with 'v'
   't' utf8(txId)                            → the same, for any other txId (every txId where 'v' is absent)
   'v'                                       → 2: the txId index uses 'x' keys (written with every block)
 *   'h'                                       → u64(height) = number of blocks stored
 *
 * `state` 0x00 (state-db.ts)
 *   'd' utf8(ns) 0x00 utf8(key)               → CBOR [value, blockNum, txNum, [[name, bytes], ...]]
 *   's'                                       → u64(savepoint) = height the state reflects
 *   Namespaces never contain NUL, so one namespace's keys are contiguous and sort by key code point
 *   order; a key may contain NUL (composite keys start with it).
 *   Namespaces: a chaincode's public state is `ns`; a private collection's values are `ns$$p<coll>`;
 *   the hashes of its private writes are `ns$$h<coll>` with key hex(sha256(key)) (Fabric's layout;
 *   chaincode and collection names cannot contain `$`, so these never collide).
 *
 * `history` 0x00 (history.ts)
 *   utf8(ns) 0x00 u32(len utf8(key)) utf8(key) u64(blockNum) u64(txNum)
 *                                             → empty: the txId, timestamp and value are read from
                                               transaction txNum of block blockNum (history.ts).
                                               Entries written before this layout hold
                                               CBOR [txId, timestamp, isDelete, value], still read.
 *   The key is length-prefixed, so a key that is a prefix of another (or holds NUL) cannot mix
 *   its entries with the other's; one key's entries sort by commit order.
 *
 * `state` 0x00 `richidx` 0x00 (rich-index-store.ts; nested in the state sublevel)
 *   'D' utf8(ns) 0x00 utf8(ddoc) 0x00 utf8(name)             → the index definition (JSON)
 *   'E' utf8(ns) 0x00 utf8(ddoc) 0x00 utf8(name) 0x00 tuple utf8(key) → utf8(key)
 *   `tuple` is the concatenated collation encodings of the document's indexed field values
 *   (query/collation.ts: self-delimiting and ordered like CouchDB's collation), so an index range
 *   scan is a byte range scan.
 */
import { concatBytes, LoomError, utf8 } from '@loom/common';

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** The smallest key above every key that starts with `prefix`; undefined if there is none (all 0xff). */
export function prefixUpperBound(prefix: Uint8Array): Uint8Array | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i]! < 0xff) {
      const out = prefix.slice(0, i + 1);
      out[i] = prefix[i]! + 1;
      return out;
    }
  }
  return undefined;
}

export function u64(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new LoomError('LEDGER_BAD_NUMBER', `not an unsigned integer: ${n}`);
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

export function readU64(b: Uint8Array, offset = 0): number {
  return Number(new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(offset));
}

export function u32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

const ZERO = new Uint8Array([0]);
const loneSurrogate = /\p{Cs}/u;

/** Rejects strings that would not round-trip through UTF-8 (lone surrogates) and, if asked, NUL. */
export function checkText(s: string, what: string, allowNul: boolean): void {
  if (typeof s !== 'string' || loneSurrogate.test(s) || (!allowNul && s.includes('\u0000'))) {
    throw new LoomError('LEDGER_INVALID_KEY', `${what} is not a valid ${allowNul ? 'key' : 'name'}`, {
      details: { what },
    });
  }
}

/** `utf8(ns) 0x00`: the start of a namespace's entries. */
export function namespacePrefix(ns: string): Uint8Array {
  checkText(ns, 'namespace', false);
  return concatBytes(utf8(ns), ZERO);
}

/** `utf8(ns) 0x00 utf8(key)`. */
export function namespacedKey(ns: string, key: string): Uint8Array {
  checkText(key, 'key', true);
  return concatBytes(namespacePrefix(ns), utf8(key));
}

export function tagged(tag: string, ...parts: Uint8Array[]): Uint8Array {
  return concatBytes(new Uint8Array([tag.charCodeAt(0)]), ...parts);
}

/** `utf8(ns) 0x00 u32(len) utf8(key)`: every history entry of one key starts with this. */
export function historyKeyPrefix(ns: string, key: string): Uint8Array {
  checkText(key, 'key', true);
  const k = utf8(key);
  return concatBytes(namespacePrefix(ns), u32(k.length), k);
}

export function historyKey(ns: string, key: string, blockNum: number, txNum: number): Uint8Array {
  return concatBytes(historyKeyPrefix(ns, key), u64(blockNum), u64(txNum));
}
