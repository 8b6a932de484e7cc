/**
 * The history index: every committed write of a key with its transaction, for `getHistoryForKey`.
 * Entries are written in the same batch as the block and its state updates (layout in keys.ts).
 *
 * Order: newest first by default — Fabric ≥ 2.0 returns history newest to oldest by (blockNum,
 * txNum) — or oldest first on request.
 */
import { decodeValue, encodeValue, readBool, readBytes, readText, readTuple, readUint } from '@loom/common';
import type { KV, WriteBatch } from './kv.js';
import { historyKey, historyKeyPrefix, prefixUpperBound, readU64 } from './keys.js';

export interface HistoryWrite {
  namespace: string;
  key: string;
  blockNum: number;
  txNum: number;
  txId: string;
  /** The transaction's timestamp (ms since the epoch, from its channel header). */
  timestamp: number;
  isDelete: boolean;
  /** The value written; ignored (stored empty) for a delete. */
  value?: Uint8Array | undefined;
}

/** One modification of a key, as fabric-shim's `KeyModification`. */
export interface KeyModification {
  txId: string;
  blockNum: number;
  txNum: number;
  timestamp: number;
  isDelete: boolean;
  value: Uint8Array;
}

export interface HistoryQueryOptions {
  order?: 'newest-first' | 'oldest-first';
  limit?: number;
}

export interface HistoryIndex {
  addEntries(batch: WriteBatch, writes: readonly HistoryWrite[]): void;
  getHistoryForKey(ns: string, key: string, options?: HistoryQueryOptions): AsyncIterable<KeyModification>;
}

class LevelHistoryIndex implements HistoryIndex {
  readonly #kv: KV;
  constructor(kv: KV) {
    this.#kv = kv;
  }

  addEntries(batch: WriteBatch, writes: readonly HistoryWrite[]): void {
    const b = batch.scoped(this.#kv);
    for (const w of writes) {
      const value = w.isDelete ? new Uint8Array(0) : (w.value ?? new Uint8Array(0));
      b.put(historyKey(w.namespace, w.key, w.blockNum, w.txNum), encodeValue([w.txId, w.timestamp, w.isDelete, value]));
    }
  }

  async *getHistoryForKey(ns: string, key: string, options: HistoryQueryOptions = {}): AsyncIterable<KeyModification> {
    const p = historyKeyPrefix(ns, key);
    const it = this.#kv.iterate({
      gte: p,
      lt: prefixUpperBound(p)!,
      reverse: (options.order ?? 'newest-first') === 'newest-first',
      ...(options.limit === undefined ? {} : { limit: options.limit }),
    });
    for await (const [k, v] of it) {
      const t = readTuple(decodeValue(v, 'HistoryEntry'), 4, 'HistoryEntry');
      yield {
        txId: readText(t[0], 'HistoryEntry.txId'),
        blockNum: readU64(k, p.length),
        txNum: readU64(k, p.length + 8),
        timestamp: readUint(t[1], 'HistoryEntry.timestamp'),
        isDelete: readBool(t[2], 'HistoryEntry.isDelete'),
        value: readBytes(t[3], 'HistoryEntry.value'),
      };
    }
  }
}

export function createHistoryIndex(kv: KV): HistoryIndex {
  return new LevelHistoryIndex(kv);
}
