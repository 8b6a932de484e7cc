/**
 * The history index: every committed write of a key with its transaction, for `getHistoryForKey`.
 * Entries are written in the same batch as the block and its state updates (layout in keys.ts).
 *
 * An entry is only its key, `(namespace, key, blockNum, txNum)`, with an empty value, as in Fabric's
 * history database: the transaction's id, timestamp and the value it wrote are read from the block
 * when a query asks for them. The index then adds about 50 bytes of random keys per write instead of
 * about 200, which is what LevelDB recompacts at every level of a large state. Entries written by
 * earlier versions carry `[txId, timestamp, isDelete, value]` as their value and are read as they are.
 *
 * Order: newest first by default — Fabric ≥ 2.0 returns history newest to oldest by (blockNum,
 * txNum) — or oldest first on request.
 */
import {
  type Block,
  decodeBlock,
  decodeValue,
  endorserTxRwSet,
  LoomError,
  readBool,
  readBytes,
  readText,
  readTuple,
  readUint,
} from '@loom/common';
import type { KV, WriteBatch } from './kv.js';
import { historyKey, historyKeyPrefix, prefixUpperBound, readU64 } from './keys.js';

/** One committed write (or delete) of a key: where it is. What it wrote is in that transaction. */
export interface HistoryWrite {
  namespace: string;
  key: string;
  blockNum: number;
  txNum: number;
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

/** Where the history index reads the transactions its entries point at. */
export interface HistoryBlockSource {
  getBlockBytes(blockNum: number): Promise<Uint8Array | undefined>;
}

const EMPTY = new Uint8Array(0);

/**
 * The last write of `key` in namespace `ns` by transaction `txNum` of `block` (a transaction writes
 * a key at most once in effect: its last write), with the transaction's id and timestamp; undefined
 * when the transaction cannot be read or does not write that key.
 */
export function writeInBlock(
  block: Block,
  txNum: number,
  ns: string,
  key: string,
): Omit<KeyModification, 'blockNum' | 'txNum'> | undefined {
  const env = block.data[txNum];
  if (env === undefined) return undefined;
  try {
    const { channelHeader: ch, rwset } = endorserTxRwSet(env);
    let found: { isDelete: boolean; value: Uint8Array } | undefined;
    for (const n of rwset.nsRwsets) {
      if (n.namespace !== ns) continue;
      for (const w of n.rwset.writes) if (w.key === key) found = w;
    }
    if (found === undefined) return undefined;
    return {
      txId: ch.txId,
      timestamp: ch.timestamp,
      isDelete: found.isDelete,
      value: found.isDelete ? EMPTY : found.value,
    };
  } catch {
    return undefined;
  }
}

class LevelHistoryIndex implements HistoryIndex {
  readonly #kv: KV;
  readonly #blocks: HistoryBlockSource;
  constructor(kv: KV, blocks: HistoryBlockSource) {
    this.#kv = kv;
    this.#blocks = blocks;
  }

  addEntries(batch: WriteBatch, writes: readonly HistoryWrite[]): void {
    const b = batch.scoped(this.#kv);
    for (const w of writes) b.put(historyKey(w.namespace, w.key, w.blockNum, w.txNum), EMPTY);
  }

  async *getHistoryForKey(ns: string, key: string, options: HistoryQueryOptions = {}): AsyncIterable<KeyModification> {
    const p = historyKeyPrefix(ns, key);
    const it = this.#kv.iterate({
      gte: p,
      lt: prefixUpperBound(p)!,
      reverse: (options.order ?? 'newest-first') === 'newest-first',
      ...(options.limit === undefined ? {} : { limit: options.limit }),
    });
    // A key's writes often cluster in few blocks: the last block read is kept for the next entry.
    let cached: { blockNum: number; block: Block | undefined } | undefined;
    for await (const [k, v] of it) {
      const blockNum = readU64(k, p.length);
      const txNum = readU64(k, p.length + 8);
      if (v.length > 0) {
        const t = readTuple(decodeValue(v, 'HistoryEntry'), 4, 'HistoryEntry');
        yield {
          txId: readText(t[0], 'HistoryEntry.txId'),
          blockNum,
          txNum,
          timestamp: readUint(t[1], 'HistoryEntry.timestamp'),
          isDelete: readBool(t[2], 'HistoryEntry.isDelete'),
          value: readBytes(t[3], 'HistoryEntry.value'),
        };
        continue;
      }
      if (cached?.blockNum !== blockNum) {
        const bytes = await this.#blocks.getBlockBytes(blockNum);
        cached = { blockNum, block: bytes === undefined ? undefined : decodeBlock(bytes) };
      }
      const w = cached.block === undefined ? undefined : writeInBlock(cached.block, txNum, ns, key);
      if (w === undefined) {
        throw new LoomError(
          'LEDGER_CORRUPT',
          `history entry of ${ns}/${key} points at block ${blockNum} tx ${txNum}, which does not write it`,
          { httpStatus: 500, details: { namespace: ns, key, blockNum, txNum } },
        );
      }
      yield { ...w, blockNum, txNum };
    }
  }
}

export function createHistoryIndex(kv: KV, blocks: HistoryBlockSource): HistoryIndex {
  return new LevelHistoryIndex(kv, blocks);
}
