/**
 * The ledger's verifiable accumulator: an RFC 6962 Merkle tree over every transaction of the channel
 * (leaf layout and digest in proofs.ts), kept as a Merkle Mountain Range of stored nodes.
 *
 * Every complete subtree ("node" at height h covering leaves [i·2^h, (i+1)·2^h)) is written once,
 * when its last leaf arrives, at its MMR post-order position, and never changes. The root of n
 * leaves is the right-to-left fold of the peaks (the complete subtrees of n's binary decomposition),
 * which is exactly RFC 6962's root, so audit paths verify with merkle.ts' `verifyMerkleAuditPath`.
 * Appending is O(log n) puts; the peaks are kept in memory and reloaded with O(log n) gets on open.
 * Any earlier tree size's root and proofs can be computed from the same stored nodes, so proofs
 * against an older digest keep working.
 *
 * Crash safety: nodes and block starts are idempotent (a position always holds the same hash), so
 * the ledger writes them before (or in the same batch as) its savepoint and reopens with the
 * committed height; nodes past it are overwritten with the same values when the block is replayed.
 *
 * Pure: storage is the injected `AccumulatorStore`.
 */
import { type Bytes, type HashFn, LoomError, merkleNodeHash, type Version } from '@loom/common';
import { type KeyProof, type LedgerDigest, type TxProof, txLeafHash } from './proofs.js';

export * from './proofs.js';

/** Where the accumulator keeps its nodes; the ledger maps it onto a key-value bucket. */
export interface AccumulatorStore {
  /** The node at an MMR post-order position. */
  get(pos: number): Bytes | undefined | Promise<Bytes | undefined>;
  put(pos: number, hash: Bytes): void | Promise<void>;
  /** Leaf index of block `blockNum`'s first transaction (for blockNum = height: the tx count). */
  getBlockStart(blockNum: number): number | undefined | Promise<number | undefined>;
  putBlockStart(blockNum: number, leafIndex: number): void | Promise<void>;
}

export const AccumulatorErrorCode = {
  /** A block appended out of order, or the store lacks a node it should hold. */
  CORRUPT: 'ACCUMULATOR_CORRUPT',
  OUT_OF_RANGE: 'ACCUMULATOR_OUT_OF_RANGE',
} as const;

/** One transaction as the accumulator records it. */
export interface AccumulatedTx {
  readonly envelopeHash: Bytes;
  readonly validationCode: number;
}

/** MMR post-order position of the node at height `h`, index `i` (leaves: h = 0). */
export function mmrPosition(h: number, i: number): number {
  const firstLeaf = i * 2 ** h;
  return 2 * firstLeaf - popcount(firstLeaf) + 2 ** (h + 1) - 2;
}

function popcount(n: number): number {
  let c = 0;
  while (n > 0) {
    c += n % 2;
    n = Math.floor(n / 2);
  }
  return c;
}

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

const isPowerOfTwo = (n: number) => n > 0 && (n & (n - 1)) === 0;

interface Peak {
  readonly h: number;
  readonly hash: Bytes;
}

export interface AccumulatorOptions {
  readonly channelId: string;
  readonly hash: HashFn;
  /** Blocks committed to the ledger (its height); the accumulator resumes there. */
  readonly height: number;
}

export class LedgerAccumulator {
  readonly #store: AccumulatorStore;
  readonly #hash: HashFn;
  readonly #channelId: string;
  #height: number;
  #size: number;
  #peaks: Peak[];

  private constructor(store: AccumulatorStore, opts: AccumulatorOptions, size: number, peaks: Peak[]) {
    this.#store = store;
    this.#hash = opts.hash;
    this.#channelId = opts.channelId;
    this.#height = opts.height;
    this.#size = size;
    this.#peaks = peaks;
  }

  /** Opens at the ledger's committed height, reloading the peaks from the store. */
  static async open(store: AccumulatorStore, opts: AccumulatorOptions): Promise<LedgerAccumulator> {
    const { size, peaks } = await loadPeaks(store, opts.height);
    return new LedgerAccumulator(store, opts, size, peaks);
  }

  /**
   * Forgets in-memory progress and reloads at `height` from the store: for a commit whose batch
   * (holding this block's nodes) failed after `appendBlock` returned.
   */
  async reset(height: number): Promise<void> {
    const { size, peaks } = await loadPeaks(this.#store, height);
    this.#height = height;
    this.#size = size;
    this.#peaks = peaks;
  }

  get height(): number {
    return this.#height;
  }
  get txCount(): number {
    return this.#size;
  }

  digest(): LedgerDigest {
    return { channelId: this.#channelId, height: this.#height, txCount: this.#size, root: this.#rootOfPeaks() };
  }

  /** Appends block `blockNum` (must be the next block) and returns the new digest. */
  async appendBlock(blockNum: number, txs: readonly AccumulatedTx[]): Promise<LedgerDigest> {
    if (blockNum !== this.#height) {
      throw new LoomError(AccumulatorErrorCode.CORRUPT, `expected block ${this.#height}, got ${blockNum}`, {
        httpStatus: 500,
        details: { expected: this.#height, got: blockNum },
      });
    }
    await this.#store.putBlockStart(blockNum, this.#size);
    for (let txNum = 0; txNum < txs.length; txNum++) {
      const t = txs[txNum]!;
      await this.#appendLeaf(txLeafHash(this.#hash, t.envelopeHash, blockNum, txNum, t.validationCode));
    }
    await this.#store.putBlockStart(blockNum + 1, this.#size);
    this.#height = blockNum + 1;
    return this.digest();
  }

  /** The root over the first `size` leaves (any size up to the current one). */
  async rootAt(size: number): Promise<Bytes> {
    this.#checkSize(size);
    if (size === 0) return this.#hash(new Uint8Array(0));
    return this.#subtreeRoot(0, size);
  }

  /** The digest at an earlier height (for consistency proofs between signed digests). */
  async digestAt(height: number): Promise<LedgerDigest> {
    if (!Number.isSafeInteger(height) || height < 0 || height > this.#height) throw outOfRange('height', height);
    const txCount = height === 0 ? 0 : ((await this.#store.getBlockStart(height)) ?? Number.NaN);
    if (!Number.isSafeInteger(txCount)) throw corrupt(`no block start for height ${height}`);
    return { channelId: this.#channelId, height, txCount, root: await this.rootAt(txCount) };
  }

  /** Leaf index of transaction `txNum` of block `blockNum`. */
  async leafIndex(blockNum: number, txNum: number): Promise<number> {
    if (!Number.isSafeInteger(blockNum) || blockNum < 0 || blockNum >= this.#height)
      throw outOfRange('block', blockNum);
    const start = await this.#store.getBlockStart(blockNum);
    const end = await this.#store.getBlockStart(blockNum + 1);
    if (start === undefined || end === undefined) throw corrupt(`no block start for block ${blockNum}`);
    if (!Number.isSafeInteger(txNum) || txNum < 0 || start + txNum >= end) throw outOfRange('txNum', txNum);
    return start + txNum;
  }

  /** RFC 6962 audit path for leaf `index` in the tree of the first `size` leaves. */
  async auditPath(index: number, size: number = this.#size): Promise<Bytes[]> {
    this.#checkSize(size);
    if (!Number.isSafeInteger(index) || index < 0 || index >= size) throw outOfRange('leaf index', index);
    const path: Bytes[] = [];
    let lo = 0;
    let hi = size;
    // Walk down from the root, collecting the sibling subtree at each split; the path lists them leaf-first.
    while (hi - lo > 1) {
      const k = largestPowerOfTwoBelow(hi - lo);
      if (index < lo + k) {
        path.push(await this.#subtreeRoot(lo + k, hi));
        hi = lo + k;
      } else {
        path.push(await this.#subtreeRoot(lo, lo + k));
        lo += k;
      }
    }
    return path.reverse();
  }

  /**
   * Proof that a transaction is in the ledger of `digest` (default: the current one). The caller
   * passes the transaction as its block holds it: envelope bytes, txId and validation code.
   */
  async proveTx(
    tx: { blockNum: number; txNum: number; txId: string; envelope: Bytes; validationCode: number },
    digest: LedgerDigest = this.digest(),
  ): Promise<TxProof> {
    if (digest.channelId !== this.#channelId) throw outOfRange('channel', digest.channelId);
    if (tx.blockNum >= digest.height) throw outOfRange('block', tx.blockNum);
    const leafIndex = await this.leafIndex(tx.blockNum, tx.txNum);
    return {
      channelId: this.#channelId,
      txId: tx.txId,
      blockNum: tx.blockNum,
      txNum: tx.txNum,
      validationCode: tx.validationCode,
      envelope: tx.envelope,
      leafIndex,
      treeSize: digest.txCount,
      auditPath: await this.auditPath(leafIndex, digest.txCount),
    };
  }

  /** Proof of a key version from its history entry and the writing transaction (as stored in its block). */
  async proveKey(
    entry: { namespace: string; key: string; version: Version; isDelete: boolean; valueHash: Bytes },
    tx: { txId: string; envelope: Bytes; validationCode: number },
    digest: LedgerDigest = this.digest(),
  ): Promise<KeyProof> {
    return {
      namespace: entry.namespace,
      key: entry.key,
      version: entry.version,
      isDelete: entry.isDelete,
      valueHash: entry.valueHash,
      tx: await this.proveTx({ ...tx, blockNum: entry.version.blockNum, txNum: entry.version.txNum }, digest),
    };
  }

  /** RFC 6962 §2.1.2 consistency proof from the tree of `oldSize` leaves to that of `newSize`. */
  async consistencyProof(oldSize: number, newSize: number = this.#size): Promise<Bytes[]> {
    this.#checkSize(newSize);
    if (!Number.isSafeInteger(oldSize) || oldSize < 0 || oldSize > newSize) throw outOfRange('old size', oldSize);
    if (oldSize === 0 || oldSize === newSize) return [];
    const sub = async (m: number, lo: number, hi: number, complete: boolean): Promise<Bytes[]> => {
      const n = hi - lo;
      if (m === n) return complete ? [] : [await this.#subtreeRoot(lo, hi)];
      const k = largestPowerOfTwoBelow(n);
      if (m <= k) return [...(await sub(m, lo, lo + k, complete)), await this.#subtreeRoot(lo + k, hi)];
      return [...(await sub(m - k, lo + k, hi, false)), await this.#subtreeRoot(lo, lo + k)];
    };
    return sub(oldSize, 0, newSize, true);
  }

  async #appendLeaf(leaf: Bytes): Promise<void> {
    let h = 0;
    let i = this.#size;
    let cur = leaf;
    await this.#store.put(mmrPosition(0, i), cur);
    while (this.#peaks.length > 0 && this.#peaks[this.#peaks.length - 1]!.h === h) {
      const left = this.#peaks.pop()!;
      cur = merkleNodeHash(this.#hash, left.hash, cur);
      h++;
      i = Math.floor(i / 2);
      await this.#store.put(mmrPosition(h, i), cur);
    }
    this.#peaks.push({ h, hash: cur });
    this.#size++;
  }

  #rootOfPeaks(): Bytes {
    if (this.#peaks.length === 0) return this.#hash(new Uint8Array(0));
    let r = this.#peaks[this.#peaks.length - 1]!.hash;
    for (let j = this.#peaks.length - 2; j >= 0; j--) r = merkleNodeHash(this.#hash, this.#peaks[j]!.hash, r);
    return r;
  }

  /** MTH(D[lo:hi]) per RFC 6962, from stored complete subtrees. */
  async #subtreeRoot(lo: number, hi: number): Promise<Bytes> {
    const n = hi - lo;
    if (isPowerOfTwo(n) && lo % n === 0) return getNode(this.#store, Math.log2(n), lo / n);
    const k = largestPowerOfTwoBelow(n);
    return merkleNodeHash(this.#hash, await this.#subtreeRoot(lo, lo + k), await this.#subtreeRoot(lo + k, hi));
  }

  #checkSize(size: number): void {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.#size) throw outOfRange('tree size', size);
  }
}

async function loadPeaks(store: AccumulatorStore, height: number): Promise<{ size: number; peaks: Peak[] }> {
  const size = height === 0 ? 0 : await store.getBlockStart(height);
  if (size === undefined) {
    throw new LoomError(AccumulatorErrorCode.CORRUPT, `accumulator has no record of block ${height - 1}`, {
      httpStatus: 500,
      details: { height },
    });
  }
  const peaks: Peak[] = [];
  let lo = 0;
  for (let h = 52; h >= 0; h--) {
    const w = 2 ** h;
    if (Math.floor(size / w) % 2 === 1) {
      peaks.push({ h, hash: await getNode(store, h, lo / w) });
      lo += w;
    }
  }
  return { size, peaks };
}

async function getNode(store: AccumulatorStore, h: number, i: number): Promise<Bytes> {
  const node = await store.get(mmrPosition(h, i));
  if (!node) throw corrupt(`missing node at height ${h}, index ${i}`);
  return node;
}

function corrupt(message: string): LoomError {
  return new LoomError(AccumulatorErrorCode.CORRUPT, `accumulator store: ${message}`, { httpStatus: 500 });
}

function outOfRange(what: string, value: unknown): LoomError {
  return new LoomError(AccumulatorErrorCode.OUT_OF_RANGE, `${what} ${String(value)} is out of range`, {
    httpStatus: 404,
    details: { what, value },
  });
}

/** An in-memory store, for tests and tools. */
export function createMemoryAccumulatorStore(): AccumulatorStore & { readonly nodeCount: number } {
  const nodes = new Map<number, Bytes>();
  const starts = new Map<number, number>();
  return {
    get: (pos) => nodes.get(pos),
    put: (pos, hash) => {
      nodes.set(pos, hash);
    },
    getBlockStart: (b) => starts.get(b),
    putBlockStart: (b, i) => {
      starts.set(b, i);
    },
    get nodeCount() {
      return nodes.size;
    },
  };
}
