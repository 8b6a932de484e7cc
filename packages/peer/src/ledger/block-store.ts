/**
 * Blocks by number (the encoded bytes exactly as received from the orderer), their validation
 * codes, a txId index and the height. Writes go into a caller's batch so a block commits together
 * with its state updates and history; layout in keys.ts.
 */
import {
  type Block,
  decodeBlock,
  decodeBlockHeader,
  decodeChannelHeader,
  decodeEnvelope,
  decodeHeader,
  decodePayload,
  decodeValue,
  encodeValue,
  LoomError,
  readTuple,
  readUint,
  utf8,
} from '@loom/common';
import { batchIdentity, type KV, type WriteBatch } from './kv.js';
import { checkText, readU64, tagged, u64 } from './keys.js';

export interface TxLocation {
  blockNum: number;
  txNum: number;
  validationCode: number;
}

export interface StoredBlock {
  number: number;
  /** The encoded Block exactly as received (its metadata's validation codes as the orderer sent them). */
  bytes: Uint8Array;
  /** One TxValidationCode per transaction, as committed by this peer. */
  validationCodes: Uint8Array;
}

export interface BlockStore {
  /**
   * Adds block `height()` (plus any already added to this batch) to `batch`: its bytes, codes,
   * txId index entries and the new height. `validationCodes` has one byte per transaction.
   * A txId already indexed (a DUPLICATE_TXID transaction) keeps its first location.
   * `decoded`: what the caller already decoded from these bytes, so they are not decoded again.
   */
  addBlock(
    batch: WriteBatch,
    blockBytes: Uint8Array,
    validationCodes: Uint8Array,
    decoded?: DecodedBlockInfo,
  ): Promise<{ blockNum: number }>;
  /** Number of blocks stored (the next block's number). */
  height(): Promise<number>;
  getBlockBytes(blockNum: number): Promise<Uint8Array | undefined>;
  /** The decoded block with `metadata.txValidationCodes` set to the committed codes. */
  getBlock(blockNum: number): Promise<Block | undefined>;
  getValidationCodes(blockNum: number): Promise<Uint8Array | undefined>;
  getTxLocation(txId: string): Promise<TxLocation | undefined>;
  /** Many txIds in one read (level's getMany); undefined for an unknown or malformed txId. */
  getTxLocations(txIds: readonly string[]): Promise<(TxLocation | undefined)[]>;
  getBlockByTxId(txId: string): Promise<Block | undefined>;
  isTxIdCommitted(txId: string): Promise<boolean>;
  /** Stored blocks from `from` (inclusive) upwards, in order. */
  iterateBlocks(from?: number): AsyncIterable<StoredBlock>;
}

/** What `addBlock` would otherwise decode from the block bytes. */
export interface DecodedBlockInfo {
  readonly blockNum: number;
  /** Per transaction, in order: its txId (envelopeTxId's answer). */
  readonly txIds: readonly (string | undefined)[];
  /** Locations already read for some of these txIds (e.g. during validation): not read again. */
  readonly known?: ReadonlyMap<string, TxLocation | undefined>;
}

const HEIGHT = tagged('h');
/**
 * Present in ledgers whose txId index keys a lowercase-hex 64-character txId (every txId Loom and
 * Fabric clients make: hex(sha256(nonce ‖ creator))) by its 32 bytes under 'x'. Ledgers begun
 * before that keyed every txId by its text under 't', and keep doing so (they lack this key).
 */
const TXID_KEYS_V2 = tagged('v');
const TXID_KEYS_V2_VALUE = new Uint8Array([2]);
const HEX_TXID = /^[0-9a-f]{64}$/;
/** Block bytes are stored under `'n' u64(blockNum)` (openLedgerStores may keep them in a store of their own). */
export const BLOCK_BYTES_TAG = 'n';

/** Reads the txId from an envelope; undefined when it is too malformed to have one. */
export function envelopeTxId(envelopeBytes: Uint8Array): string | undefined {
  try {
    const payload = decodePayload(decodeEnvelope(envelopeBytes).payload);
    const txId = decodeChannelHeader(decodeHeader(payload.header).channelHeader).txId;
    return txId === '' ? undefined : txId;
  } catch {
    return undefined;
  }
}

class LevelBlockStore implements BlockStore {
  readonly #kv: KV;
  /** Height and txIds added to a batch not yet written, so several blocks can share one batch. */
  readonly #pending = new WeakMap<object, { height: number; txIds: Set<string> }>();
  /** Whether this ledger's txId index uses the v2 keys (TXID_KEYS_V2); settled on first use. */
  #v2: Promise<boolean> | undefined;

  constructor(kv: KV) {
    this.#kv = kv;
  }

  #txIdKeysV2(): Promise<boolean> {
    this.#v2 ??= this.#kv.getMany([TXID_KEYS_V2, HEIGHT]).then(
      // A ledger with no block yet starts with v2 keys (its block 0 writes the marker).
      ([v2, h]) => v2 !== undefined || h === undefined || readU64(h) === 0,
      (e) => {
        this.#v2 = undefined;
        throw e;
      },
    );
    return this.#v2;
  }

  /** The txId index key of `txId` (already checked to be text without NUL). */
  #txIdKey(txId: string, v2: boolean): Uint8Array {
    if (v2 && txId.length === 64 && HEX_TXID.test(txId)) {
      const k = Buffer.allocUnsafe(33);
      k[0] = 0x78; // 'x'
      k.write(txId, 1, 'hex');
      return k;
    }
    return tagged('t', utf8(txId));
  }

  async height(): Promise<number> {
    const h = await this.#kv.get(HEIGHT);
    return h === undefined ? 0 : readU64(h);
  }

  async addBlock(
    batch: WriteBatch,
    blockBytes: Uint8Array,
    validationCodes: Uint8Array,
    decoded?: DecodedBlockInfo,
  ): Promise<{ blockNum: number }> {
    let blockNum: number;
    let txIds: readonly (string | undefined)[];
    if (decoded) {
      ({ blockNum, txIds } = decoded);
    } else {
      const block = decodeBlock(blockBytes);
      blockNum = decodeBlockHeader(block.header).number;
      txIds = block.data.map((env) => envelopeTxId(env));
    }
    const id = batchIdentity(batch);
    let pending = this.#pending.get(id);
    if (pending === undefined) {
      pending = { height: await this.height(), txIds: new Set() };
      this.#pending.set(id, pending);
    }
    if (blockNum !== pending.height) {
      throw new LoomError('LEDGER_BLOCK_OUT_OF_ORDER', `expected block ${pending.height}, got block ${blockNum}`, {
        details: { expected: pending.height, got: blockNum },
        httpStatus: 409,
      });
    }
    if (validationCodes.length !== txIds.length) {
      throw new LoomError(
        'LEDGER_BAD_VALIDATION_CODES',
        `block ${blockNum} has ${txIds.length} transactions but ${validationCodes.length} validation codes`,
      );
    }
    const v2 = await this.#txIdKeysV2();
    const b = batch.scoped(this.#kv);
    b.put(tagged('n', u64(blockNum)), blockBytes);
    b.put(tagged('c', u64(blockNum)), validationCodes);
    // With every block, not only block 0: a ledger that did not begin at block 0 is marked too.
    if (v2) b.put(TXID_KEYS_V2, TXID_KEYS_V2_VALUE);
    // Whether each txId is indexed already: from `decoded.known`, else read (all at once).
    const given = decoded?.known;
    const toRead = [...new Set(txIds.filter((t): t is string => t !== undefined && !given?.has(t)))];
    const read = await this.#kv.getMany(toRead.map((t) => this.#txIdKey(t, v2)));
    const indexed = new Set<string>(toRead.filter((_, i) => read[i] !== undefined));
    if (given) for (const [t, loc] of given) if (loc !== undefined) indexed.add(t);
    for (const [txNum, txId] of txIds.entries()) {
      // A txId seen before (a DUPLICATE_TXID transaction) keeps its first location.
      if (txId === undefined || pending.txIds.has(txId) || indexed.has(txId)) continue;
      pending.txIds.add(txId);
      b.put(this.#txIdKey(txId, v2), encodeValue([blockNum, txNum, validationCodes[txNum]!]));
    }
    pending.height = blockNum + 1;
    b.put(HEIGHT, u64(pending.height));
    return { blockNum };
  }

  getBlockBytes(blockNum: number): Promise<Uint8Array | undefined> {
    return this.#kv.get(tagged(BLOCK_BYTES_TAG, u64(blockNum)));
  }

  getValidationCodes(blockNum: number): Promise<Uint8Array | undefined> {
    return this.#kv.get(tagged('c', u64(blockNum)));
  }

  async getBlock(blockNum: number): Promise<Block | undefined> {
    const [bytes, codes] = await this.#kv.getMany([tagged('n', u64(blockNum)), tagged('c', u64(blockNum))]);
    if (bytes === undefined) return undefined;
    return withCodes(bytes, codes ?? new Uint8Array(0));
  }

  async getTxLocation(txId: string): Promise<TxLocation | undefined> {
    checkText(txId, 'txId', false);
    const v2 = await this.#txIdKeysV2();
    return readTxLocation(await this.#kv.get(this.#txIdKey(txId, v2)));
  }

  async getTxLocations(txIds: readonly string[]): Promise<(TxLocation | undefined)[]> {
    const ok = txIds.map((t) => {
      try {
        checkText(t, 'txId', false);
        return true;
      } catch {
        return false;
      }
    });
    const v2 = await this.#txIdKeysV2();
    const vs = await this.#kv.getMany(txIds.filter((_, i) => ok[i]).map((t) => this.#txIdKey(t, v2)));
    let j = 0;
    return txIds.map((_, i) => (ok[i] ? readTxLocation(vs[j++]) : undefined));
  }

  async getBlockByTxId(txId: string): Promise<Block | undefined> {
    const loc = await this.getTxLocation(txId);
    return loc === undefined ? undefined : this.getBlock(loc.blockNum);
  }

  async isTxIdCommitted(txId: string): Promise<boolean> {
    checkText(txId, 'txId', false);
    const v2 = await this.#txIdKeysV2();
    return (await this.#kv.get(this.#txIdKey(txId, v2))) !== undefined;
  }

  async *iterateBlocks(from = 0): AsyncIterable<StoredBlock> {
    const codesKv = this.#kv;
    // Bounded by the height: bytes of a block whose commit a crash cut short may be stored beyond it
    // (the ledger writes a block's bytes before the batch that indexes it; see ledger-stores.ts).
    const height = await this.height();
    if (from >= height) return;
    for await (const [k, bytes] of this.#kv.iterate({ gte: tagged('n', u64(from)), lt: tagged('n', u64(height)) })) {
      const number = readU64(k, 1);
      const validationCodes = (await codesKv.get(tagged('c', u64(number)))) ?? new Uint8Array(0);
      yield { number, bytes, validationCodes };
    }
  }
}

function readTxLocation(v: Uint8Array | undefined): TxLocation | undefined {
  if (v === undefined) return undefined;
  const t = readTuple(decodeValue(v, 'TxLocation'), 3, 'TxLocation');
  return {
    blockNum: readUint(t[0], 'TxLocation.blockNum'),
    txNum: readUint(t[1], 'TxLocation.txNum'),
    validationCode: readUint(t[2], 'TxLocation.validationCode'),
  };
}

function withCodes(bytes: Uint8Array, codes: Uint8Array): Block {
  const block = decodeBlock(bytes);
  return { ...block, metadata: { ...block.metadata, txValidationCodes: codes } };
}

export function createBlockStore(kv: KV): BlockStore {
  return new LevelBlockStore(kv);
}
