/**
 * The transient store: private read-write sets received before their transaction commits (from
 * this peer's own endorsements and from other endorsers' dissemination), on level under
 * `<dataDir>/transientstore`, one sublevel per channel:
 *
 *   t  lp(txId) u64(seq)        → CBOR [receivedAtHeight, TxPvtReadWriteSet bytes]
 *   h  u64(height) lp(txId) u64(seq) → ''   (purge by age)
 *
 * Entries are purged once their transaction's block commits (valid or not) and, for transactions
 * that never commit, once the ledger is `maxBlockAge` blocks past the height they were received at.
 * Transient data never enters a block.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type Bytes, concatBytes, decodeValue, encodeValue, readBytes, readTuple, readUint, utf8 } from '@loom/common';
import { prefixUpperBound, u64 } from '../ledger/keys.js';
import type { KV } from '../ledger/kv.js';
import { openLevelKV } from '../ledger/level-kv.js';

function lp(s: string): Bytes {
  const b = utf8(s);
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, b.length);
  return concatBytes(len, b);
}

const tPrefix = (txId: string) => concatBytes(utf8('t'), lp(txId));

export interface TransientEntry {
  readonly receivedAtHeight: number;
  /** An encoded TxPvtReadWriteSet. */
  readonly pvtRwset: Bytes;
}

export interface ChannelTransientStore {
  persist(txId: string, receivedAtHeight: number, pvtRwset: Bytes): Promise<void>;
  get(txId: string): Promise<TransientEntry[]>;
  /** Removes every entry of these transactions. */
  purgeByTxIds(txIds: readonly string[]): Promise<void>;
  /** Removes entries received below `height`. */
  purgeBelowHeight(height: number): Promise<number>;
}

export interface TransientStore {
  channel(channelId: string): ChannelTransientStore;
  close(): Promise<void>;
}

class KvChannelTransientStore implements ChannelTransientStore {
  readonly #kv: KV;
  #seq = Date.now() * 1000;
  /** txIds with entries (loaded on first use), so purging a block's txIds costs nothing for the others. */
  #known: Set<string> | undefined;

  constructor(kv: KV) {
    this.#kv = kv;
  }

  async persist(txId: string, receivedAtHeight: number, pvtRwset: Bytes): Promise<void> {
    const seq = this.#seq++;
    const b = this.#kv.batch();
    b.put(concatBytes(tPrefix(txId), u64(seq)), encodeValue([receivedAtHeight, pvtRwset]));
    b.put(concatBytes(utf8('h'), u64(receivedAtHeight), lp(txId), u64(seq)), new Uint8Array(0));
    await b.write();
    this.#known?.add(txId);
  }

  async #knownTxIds(): Promise<Set<string>> {
    if (this.#known === undefined) {
      const known = new Set<string>();
      const start = utf8('t');
      for await (const [k] of this.#kv.iterate({ gte: start, lt: prefixUpperBound(start)! })) {
        const len = new DataView(k.buffer, k.byteOffset + 1, 4).getUint32(0);
        known.add(new TextDecoder().decode(k.subarray(5, 5 + len)));
      }
      this.#known ??= known;
    }
    return this.#known;
  }

  async get(txId: string): Promise<TransientEntry[]> {
    const prefix = tPrefix(txId);
    const out: TransientEntry[] = [];
    for await (const [, v] of this.#kv.iterate({ gte: prefix, lt: prefixUpperBound(prefix)! })) {
      const t = readTuple(decodeValue(v, 'transient'), 2, 'transient');
      out.push({ receivedAtHeight: readUint(t[0], 'height'), pvtRwset: readBytes(t[1], 'pvtRwset') });
    }
    return out;
  }

  async purgeByTxIds(txIds: readonly string[]): Promise<void> {
    const known = await this.#knownTxIds();
    const b = this.#kv.batch();
    for (const txId of txIds) {
      if (!known.delete(txId)) continue;
      const prefix = tPrefix(txId);
      for await (const [k, v] of this.#kv.iterate({ gte: prefix, lt: prefixUpperBound(prefix)! })) {
        b.del(k);
        const height = readUint(readTuple(decodeValue(v, 'transient'), 2, 'transient')[0], 'height');
        b.del(concatBytes(utf8('h'), u64(height), lp(txId), k.subarray(prefix.length)));
      }
    }
    if (b.length > 0) await b.write();
  }

  async purgeBelowHeight(height: number): Promise<number> {
    const b = this.#kv.batch();
    const start = utf8('h');
    let n = 0;
    for await (const [k] of this.#kv.iterate({ gte: start, lt: concatBytes(start, u64(height)) })) {
      b.del(k);
      const len = new DataView(k.buffer, k.byteOffset + 9, 4).getUint32(0);
      const txId = new TextDecoder().decode(k.subarray(13, 13 + len));
      const seq = k.subarray(13 + len);
      b.del(concatBytes(tPrefix(txId), seq));
      n++;
    }
    if (n > 0) await b.write();
    return n;
  }
}

/** A transient store on any KV (tests use an in-memory one). */
export function createTransientStoreOnKv(kv: KV): TransientStore {
  const channels = new Map<string, ChannelTransientStore>();
  return {
    channel(channelId) {
      let c = channels.get(channelId);
      if (!c) channels.set(channelId, (c = new KvChannelTransientStore(kv.sublevel(channelId))));
      return c;
    },
    close: () => kv.close(),
  };
}

/** Opens the peer's transient store under `<dataDir>/transientstore`. */
export async function openTransientStore(dataDir: string): Promise<TransientStore> {
  const path = join(dataDir, 'transientstore');
  await mkdir(path, { recursive: true });
  return createTransientStoreOnKv(await openLevelKV(path));
}
