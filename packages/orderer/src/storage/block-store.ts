/**
 * The orderer's block store for one channel: blocks by number as their encoded bytes, and the height.
 *
 * Key layout (per channel):
 *   b/<channel>/n/<number:016x>   encoded Block
 *   b/<channel>/h                 height (CBOR uint) — written in the same batch as the block
 *
 * `append` checks that a block continues the chain (number = height, previousHash = hash of the
 * last block's header) before writing it, so the store never holds a fork.
 */
import {
  type Block,
  bytesEqual,
  decodeBlock,
  decodeBlockHeader,
  decodeValue,
  encodeValue,
  GENESIS_PREVIOUS_HASH,
  LoomError,
  readUint,
  toHex,
} from '@loom/common';
import { sha256 } from '@loom/common/crypto/hash';
import type { KvOp, KvStore } from './kv.js';

export const blockKeys = {
  block: (channel: string, n: number) => `b/${channel}/n/${n.toString(16).padStart(16, '0')}`,
  height: (channel: string) => `b/${channel}/h`,
  all: (channel: string) => [`b/${channel}/`, `b/${channel}0`] as const,
};

export const BlockStoreErrorCode = {
  /** A block that does not continue the chain: wrong number or previous hash. */
  CHAIN_BROKEN: 'ORDERER_CHAIN_BROKEN',
  NOT_FOUND: 'ORDERER_BLOCK_NOT_FOUND',
} as const;

export interface BlockStore {
  readonly channel: string;
  /** Number of blocks held (the next block's number). */
  readonly height: number;
  /** Hash of the last block's header; 32 zero bytes when empty. */
  readonly lastHash: Uint8Array;
  /** Decoded last block, undefined when empty. */
  readonly lastBlock: Block | undefined;
  append(blockBytes: Uint8Array, block?: Block): Promise<void>;
  get(n: number): Promise<Uint8Array | undefined>;
  /** Resolves once height > n (a block numbered n exists), or when `signal` aborts (false). */
  waitFor(n: number, signal?: AbortSignal): Promise<boolean>;
}

export async function openBlockStore(kv: KvStore, channel: string): Promise<BlockStore> {
  const hb = await kv.get(blockKeys.height(channel));
  const height = hb ? readUint(decodeValue(hb, 'height'), 'height') : 0;
  let last: Block | undefined;
  if (height > 0) {
    const b = await kv.get(blockKeys.block(channel, height - 1));
    if (!b)
      throw new LoomError('ORDERER_STORE_CORRUPT', `block ${height - 1} of ${channel} missing`, { httpStatus: 500 });
    last = decodeBlock(b);
  }
  return new LevelBlockStore(kv, channel, height, last);
}

export async function destroyBlockStore(kv: KvStore, channel: string): Promise<void> {
  const [gte, lt] = blockKeys.all(channel);
  const ops: KvOp[] = [];
  for await (const [k] of kv.range(gte, lt)) ops.push({ type: 'del', key: k });
  await kv.batch(ops);
}

class LevelBlockStore implements BlockStore {
  readonly channel: string;
  readonly #kv: KvStore;
  #height: number;
  #last: Block | undefined;
  #lastHash: Uint8Array;
  readonly #waiters = new Set<() => void>();
  /** Recent blocks kept in memory: deliver streams read the tip far more than the tail. */
  readonly #recent = new Map<number, Uint8Array>();

  constructor(kv: KvStore, channel: string, height: number, last: Block | undefined) {
    this.#kv = kv;
    this.channel = channel;
    this.#height = height;
    this.#last = last;
    this.#lastHash = last ? sha256(last.header) : GENESIS_PREVIOUS_HASH;
  }

  get height(): number {
    return this.#height;
  }
  get lastHash(): Uint8Array {
    return this.#lastHash;
  }
  get lastBlock(): Block | undefined {
    return this.#last;
  }

  async append(blockBytes: Uint8Array, decoded?: Block): Promise<void> {
    const block = decoded ?? decodeBlock(blockBytes);
    const header = decodeBlockHeader(block.header);
    if (header.number !== this.#height || !bytesEqual(header.previousHash, this.#lastHash)) {
      throw new LoomError(
        BlockStoreErrorCode.CHAIN_BROKEN,
        `block ${header.number} does not continue ${this.channel} at height ${this.#height}`,
        {
          httpStatus: 500,
          details: {
            number: header.number,
            height: this.#height,
            previousHash: toHex(header.previousHash),
            expected: toHex(this.#lastHash),
          },
        },
      );
    }
    const n = header.number;
    await this.#kv.batch([
      { type: 'put', key: blockKeys.block(this.channel, n), value: blockBytes },
      { type: 'put', key: blockKeys.height(this.channel), value: encodeValue(n + 1) },
    ]);
    this.#height = n + 1;
    this.#last = block;
    this.#lastHash = sha256(block.header);
    this.#recent.set(n, blockBytes);
    if (this.#recent.size > 256) this.#recent.delete(n - 256);
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }

  async get(n: number): Promise<Uint8Array | undefined> {
    if (!Number.isSafeInteger(n) || n < 0 || n >= this.#height) return undefined;
    return this.#recent.get(n) ?? (await this.#kv.get(blockKeys.block(this.channel, n)));
  }

  waitFor(n: number, signal?: AbortSignal): Promise<boolean> {
    if (n < this.#height) return Promise.resolve(true);
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const onAbort = () => {
        this.#waiters.delete(check);
        resolve(false);
      };
      const check = () => {
        if (n < this.#height) {
          signal?.removeEventListener('abort', onAbort);
          resolve(true);
        } else this.#waiters.add(check);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(check);
    });
  }
}
