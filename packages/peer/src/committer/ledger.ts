/**
 * A channel's ledger on this peer: the level stores (blocks, state, history, accumulator) under
 * `<dataDir>/ledgers/<channel>`, the channel's current configuration (MSPs and policies), and
 * `commitBlock`, which checks a block, validates its transactions and commits everything derived
 * from it in ONE atomic batch: block bytes, validation codes, txId index, state updates, the state
 * savepoint, history entries, accumulator nodes and the last-config pointer. A crash therefore
 * leaves the ledger at a block boundary; on open, a block store ahead of the savepoint (not
 * producible by this code, but by an older layout or a hand-made copy) is caught up by re-applying
 * the stored blocks.
 *
 * Commits are serialized; readers (API, events, proofs) see only committed batches. A block handed
 * over while others are still in the queue starts its stateless validation pass (decode,
 * identities, signatures to the worker pool) at once; its state checks and its batch wait their turn.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  applicationPoliciesOf,
  type Block,
  type Bytes,
  bytesEqual,
  type ChaincodeEvent,
  type ChannelConfig,
  type ChannelPolicies,
  computeBlockHash,
  decodeBlock,
  decodeBlockHeader,
  decodeChannelHeader,
  decodeConfigEnvelopeFromBlock,
  decodeEnvelope,
  decodeHeader,
  decodePayload,
  encodeBlock,
  GENESIS_PREVIOUS_HASH,
  HeaderType,
  type HashFn,
  LoomError,
  type Logger,
  MspManager,
  mspConfigsOf,
  ordererPoliciesOf,
  sha256,
  TxValidationCode,
  type Version,
} from '@loom/common';
import {
  type AccumulatedTx,
  type KeyProof,
  LedgerAccumulator,
  type LedgerDigest,
  type TxProof,
} from '../ledger/accumulator.js';
import { envelopeTxId, type TxLocation } from '../ledger/block-store.js';
import type { HistoryWrite, KeyModification } from '../ledger/history.js';
import { readU64, tagged, u64 } from '../ledger/keys.js';
import type { KV, WriteBatch } from '../ledger/kv.js';
import { openLedgerKV, openLedgerStores, type LedgerStores } from '../ledger/ledger-stores.js';
import { stateCacheKey } from '../ledger/state-db.js';
import type { VersionedValue } from '../ledger/state-reader.js';
import { createEndorsementPolicySource } from '../validation/policies.js';
import { createSignatureVerifier, type SignatureVerifier } from '../validation/signature-verifier.js';
import type { StateReader } from '../validation/state-reader.js';
import type { BlockValidationResult } from '../validation/types.js';
import { type PreparedBlock, prepareBlock, validateBlock } from '../validation/validate-block.js';
import { createKvAccumulatorStore } from './accumulator-store.js';
import { checkBlockContinues, checkOrdererSignatures, readBlockHeader } from './block-checks.js';

export const LedgerErrorCode = {
  CHANNEL_NAME_INVALID: 'LEDGER_CHANNEL_NAME_INVALID',
  NOT_A_CONFIG_BLOCK: 'LEDGER_NOT_A_CONFIG_BLOCK',
  WRONG_CHANNEL: 'LEDGER_WRONG_CHANNEL',
  NO_CONFIG: 'LEDGER_NO_CONFIG',
  BLOCK_NOT_FOUND: 'LEDGER_BLOCK_NOT_FOUND',
  TX_NOT_FOUND: 'LEDGER_TX_NOT_FOUND',
  KEY_NOT_FOUND: 'LEDGER_KEY_NOT_FOUND',
  CLOSED: 'LEDGER_CLOSED',
} as const;

/** Fabric's channel name rule; it also keeps a channel's directory inside the data dir. */
const CHANNEL_NAME = /^[a-z][a-z0-9.-]{0,248}$/;

export function checkChannelName(channelId: string): void {
  if (!CHANNEL_NAME.test(channelId)) {
    throw new LoomError(LedgerErrorCode.CHANNEL_NAME_INVALID, `invalid channel name ${JSON.stringify(channelId)}`, {
      details: { channelId },
    });
  }
}

/** Where a channel's level database lives under a peer's data dir. */
export function channelLedgerPath(dataDir: string, channelId: string): string {
  checkChannelName(channelId);
  return join(dataDir, 'ledgers', channelId);
}

/** One transaction of a committed block, as events report it. */
export interface CommittedTx {
  readonly txNum: number;
  readonly txId: string;
  readonly code: number;
  /** The chaincode event of a valid transaction, if it set one. */
  readonly chaincodeEvent: ChaincodeEvent | undefined;
}

export interface CommittedBlock {
  readonly blockNum: number;
  /** The block as received from the orderer. */
  readonly bytes: Bytes;
  readonly codes: Uint8Array;
  readonly transactions: readonly CommittedTx[];
  /** The new config when this was a valid config block. */
  readonly config: ChannelConfig | undefined;
  /** The namespaces the block's valid transactions wrote (public state, metadata or private hashes). */
  readonly namespaces: readonly string[];
}

export interface CommitResult {
  readonly blockNum: number;
  readonly codes: Uint8Array;
  readonly validTxs: number;
  readonly durationMs: number;
  /** Where the time went: block checks (hashes, orderer signatures), transaction validation, the batch. */
  readonly phases: { readonly checkMs: number; readonly validateMs: number; readonly writeMs: number };
}

export interface ChannelLedgerOptions {
  readonly dataDir: string;
  readonly channelId: string;
  /** LevelDB memtable of the ledger's database, in MB (default: ledger-stores.ts DEFAULT_LEDGER_WRITE_BUFFER_MB). */
  readonly writeBufferMB?: number;
  readonly logger?: Logger;
  /** Shared worker pool; when absent the ledger verifies on the main thread. */
  readonly signatureVerifier?: SignatureVerifier;
  readonly hash?: HashFn;
  /** For certificate validity windows; default the wall clock. */
  readonly clock?: () => Date;
  /**
   * A chaincode's endorsement policy text; undefined when it is not defined on the channel. Until
   * the `_lifecycle` definitions land, the default gives every namespace the channel's
   * `Endorsement` policy (Fabric's default for chaincode definitions).
   */
  readonly chaincodePolicy?: (namespace: string, config: ChannelConfig) => string | undefined;
  readonly collectionPolicy?: (namespace: string, collection: string) => string | undefined;
  /**
   * Transaction simulation's readers/writer guard (simulation/commit-gate.ts): the batch is written
   * inside `exclusive`, so no simulation sees state from two heights.
   */
  readonly commitGate?: { exclusive<T>(fn: () => Promise<T> | T): Promise<T> };
  /**
   * Awaited after each block is written and before the next one is validated (inside the commit
   * queue): what must follow a block before the next is checked, such as reloading the chaincode
   * definitions after a `_lifecycle` write, so the next block validates against them. A failure is
   * logged; the block stays committed.
   */
  readonly afterCommit?: (b: CommittedBlock) => Promise<void> | void;
  /**
   * Private data (privdata/): adds the block's private writes, purges and expiries to the block's
   * batch (`prepare`, also during recovery), and hears of each written block (`committed`, before
   * `afterCommit`), e.g. to purge the transient store.
   */
  readonly privateData?: LedgerPrivateDataHook;
}

/** What the ledger hands the private data hook for one block. */
export interface PrivateDataCommitInput {
  readonly batch: WriteBatch;
  readonly block: Block;
  readonly blockNum: number;
  readonly codes: Uint8Array;
  readonly result: BlockValidationResult;
  readonly stores: LedgerStores;
}

export interface LedgerPrivateDataHook {
  prepare(input: PrivateDataCommitInput): Promise<void>;
  committed?(input: {
    readonly block: Block;
    readonly blockNum: number;
    readonly codes: Uint8Array;
  }): Promise<void> | void;
}

export interface ChannelLedger {
  readonly channelId: string;
  /** Committed blocks (the next block's number). */
  height(): number;
  /** The channel config in force for the next block; undefined before the genesis block. */
  config(): ChannelConfig | undefined;
  /** Checks, validates and commits the next block (bytes as received, or a decoded block). */
  commitBlock(block: Bytes | Block): Promise<CommitResult>;
  getBlockBytes(blockNum: number): Promise<Bytes | undefined>;
  /** The block with the validation codes this peer committed. */
  getBlock(blockNum: number): Promise<Block | undefined>;
  getTxLocation(txId: string): Promise<{ blockNum: number; txNum: number; validationCode: number } | undefined>;
  getState(namespace: string, key: string): Promise<VersionedValue | undefined>;
  getHistoryForKey(namespace: string, key: string): AsyncIterable<KeyModification>;
  /** The digest of the committed ledger (never of a block still being written). */
  digest(): LedgerDigest;
  /** Proof against `digest` (default: the current one); any earlier digest of this ledger works. */
  proveTx(txId: string, digest?: LedgerDigest): Promise<TxProof>;
  /** Proof of the key's latest version, or of `version` when given. */
  proveKey(namespace: string, key: string, version?: Version, digest?: LedgerDigest): Promise<KeyProof>;
  /** SHA-256 over every entry of the state DB (savepoint included), for comparing replicas. */
  stateHash(): Promise<Bytes>;
  /** The level stores behind the ledger (state DB, history, block store), for simulation. */
  stores(): LedgerStores;
  /** Called after each commit, in order. Returns an unsubscribe function. */
  onCommit(listener: (b: CommittedBlock) => void): () => void;
  /**
   * Resolves true once block `blockNum` is committed and its commit hooks (`afterCommit`) have run,
   * so what the peer derives from it (e.g. the chaincode registry) is current; false when aborted or
   * closed.
   */
  waitForBlock(blockNum: number, signal?: AbortSignal): Promise<boolean>;
  /**
   * Writes one batch between block commits (in the commit queue, under the commit gate), e.g. private
   * data pulled by reconciliation. `fill` gets the batch and the current height.
   */
  writeBetweenBlocks(fill: (batch: WriteBatch, height: number) => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

const META_LAST_CONFIG = tagged('c');

interface ChannelView {
  config: ChannelConfig;
  msps: MspManager;
  application: ChannelPolicies;
  orderer: ChannelPolicies;
  ordererMspIds: string[];
}

function channelView(config: ChannelConfig, clock: (() => Date) | undefined): ChannelView {
  return {
    config,
    msps: new MspManager(mspConfigsOf(config), clock ? { clock } : {}),
    application: applicationPoliciesOf(config),
    orderer: ordererPoliciesOf(config),
    ordererMspIds: Object.values(config.orderer.orgs).map((o) => o.mspId),
  };
}

/** The channel config a config block carries; undefined for a normal block or an unreadable one. */
function configOf(block: Block): { config: ChannelConfig | undefined; error: string | undefined } {
  try {
    return { config: decodeConfigEnvelopeFromBlock(block), error: undefined };
  } catch (e) {
    return { config: undefined, error: (e as Error).message };
  }
}

/**
 * What validating a block read from the ledger, kept for writing it: the block store's txId index
 * and the state DB then do not read it again.
 */
interface BlockReads {
  readonly txLocations: Map<string, TxLocation | undefined>;
  readonly states: Map<string, VersionedValue | undefined>;
}

const newBlockReads = (): BlockReads => ({ txLocations: new Map(), states: new Map() });

/** A block whose stateless validation pass started when it was queued (see `#stage`). */
interface StagedBlock {
  readonly block: Block;
  readonly prepared: Promise<PreparedBlock | undefined>;
}

function txTimestamp(envelope: Bytes): number {
  try {
    const payload = decodePayload(decodeEnvelope(envelope).payload);
    return decodeChannelHeader(decodeHeader(payload.header).channelHeader).timestamp;
  } catch {
    return 0;
  }
}

class LevelChannelLedger implements ChannelLedger {
  readonly channelId: string;
  readonly #stores: LedgerStores;
  readonly #metaKv: KV;
  readonly #accStore: ReturnType<typeof createKvAccumulatorStore>;
  #acc: LedgerAccumulator;
  readonly #hash: HashFn;
  readonly #opts: ChannelLedgerOptions;
  readonly #log: Logger | undefined;
  readonly #verifier: SignatureVerifier;
  readonly #ownVerifier: { close(): Promise<void> } | undefined;
  #height: number;
  /**
   * Blocks whose commit is complete, hooks included (`afterCommit`: the chaincode registry reload
   * after a `_lifecycle` block, …): `height()` counts a block once it is written, this once the
   * peer acts on it. `waitForBlock` waits for this one.
   */
  #announced: number;
  #digest: LedgerDigest;
  #lastHash: Bytes;
  #view: ChannelView | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  /** Blocks handed to commitBlock and not yet done (the pipeline stages a block when this is > 0). */
  #inQueue = 0;
  readonly #listeners = new Set<(b: CommittedBlock) => void>();
  readonly #waiters = new Set<{ blockNum: number; resolve: (ok: boolean) => void }>();
  #closed = false;

  constructor(args: {
    stores: LedgerStores;
    metaKv: KV;
    accStore: ReturnType<typeof createKvAccumulatorStore>;
    acc: LedgerAccumulator;
    opts: ChannelLedgerOptions;
    hash: HashFn;
    height: number;
    lastHash: Bytes;
    view: ChannelView | undefined;
  }) {
    this.channelId = args.opts.channelId;
    this.#stores = args.stores;
    this.#metaKv = args.metaKv;
    this.#accStore = args.accStore;
    this.#acc = args.acc;
    this.#opts = args.opts;
    this.#hash = args.hash;
    this.#log = args.opts.logger;
    this.#height = args.height;
    this.#announced = args.height;
    this.#digest = args.acc.digest();
    this.#lastHash = args.lastHash;
    this.#view = args.view;
    if (args.opts.signatureVerifier) {
      this.#verifier = args.opts.signatureVerifier;
      this.#ownVerifier = undefined;
    } else {
      const pool = createSignatureVerifier({ poolSize: 0 });
      this.#verifier = pool;
      this.#ownVerifier = pool;
    }
  }

  height(): number {
    return this.#height;
  }

  config(): ChannelConfig | undefined {
    return this.#view?.config;
  }

  commitBlock(input: Bytes | Block): Promise<CommitResult> {
    const staged = this.#stage(input);
    this.#inQueue++;
    const run = this.#queue.then(() => this.#commit(input, staged));
    this.#queue = run.catch(() => undefined);
    return run.finally(() => {
      this.#inQueue--;
    });
  }

  /**
   * The pipeline: a block handed over while earlier ones are still in the commit queue starts its
   * stateless pass (decode, identities, signatures to the worker pool) now, so the workers verify it
   * while the blocks ahead are validated and written. Its state checks still run in order, at its
   * turn; if a config block ahead changes the MSPs, the pass is redone then (validateBlock checks).
   */
  #stage(input: Bytes | Block): StagedBlock | undefined {
    const view = this.#view;
    if (this.#inQueue === 0 || this.#closed || view === undefined) return undefined;
    let block: Block;
    try {
      block = input instanceof Uint8Array ? decodeBlock(input) : input;
    } catch {
      return undefined; // reported in order, by #commit
    }
    const prepared = prepareBlock(block, {
      channelId: this.channelId,
      msp: view.msps,
      signatureVerifier: this.#verifier,
      hash: this.#hash,
    }).catch(() => undefined);
    return { block, prepared };
  }

  async #commit(input: Bytes | Block, staged?: StagedBlock): Promise<CommitResult> {
    this.#checkOpen();
    const started = performance.now();
    const bytes = input instanceof Uint8Array ? input : encodeBlock(input);
    let block: Block;
    try {
      block = staged?.block ?? (input instanceof Uint8Array ? decodeBlock(input) : input);
    } catch (e) {
      throw new LoomError('LEDGER_MALFORMED_BLOCK', `block does not decode: ${(e as Error).message}`, { cause: e });
    }
    const header = readBlockHeader(block);
    checkBlockContinues(block, header, { number: this.#height, previousHash: this.#lastHash }, this.#hash);
    const blockNum = header.number;

    let view = this.#view;
    const { config: newConfig, error: configError } = configOf(block);
    if (blockNum === 0) {
      // The genesis block is trusted because an administrator handed it to the peer (as in Fabric).
      if (!newConfig) {
        throw new LoomError(
          LedgerErrorCode.NOT_A_CONFIG_BLOCK,
          `block 0 is not a config block${configError ? `: ${configError}` : ''}`,
        );
      }
      if (newConfig.channelId !== this.channelId) {
        throw new LoomError(LedgerErrorCode.WRONG_CHANNEL, `genesis block is for channel ${newConfig.channelId}`, {
          details: { channelId: newConfig.channelId, expected: this.channelId },
        });
      }
      view = channelView(newConfig, this.#opts.clock);
    } else {
      if (!view) throw new LoomError(LedgerErrorCode.NO_CONFIG, 'ledger has no channel config', { httpStatus: 500 });
      checkOrdererSignatures(block, blockNum, view.msps, view.orderer, view.ordererMspIds);
    }

    // A config block is applied through the config path, not the transaction validator: this peer
    // accepts it as the channel's next config. (Checking the update's admin signatures against the
    // modification policies is channel governance's, enforced by the orderer that cut the block.)
    let applied: ChannelConfig | undefined;
    let result: BlockValidationResult;
    let checkedAt: number | undefined;
    let nextView: ChannelView | undefined;
    const reads = newBlockReads();
    if (newConfig) {
      let ok =
        newConfig.channelId === this.channelId &&
        (blockNum === 0 || newConfig.sequence > (this.#view?.config.sequence ?? -1));
      if (ok && blockNum > 0) {
        // A config whose MSPs or policies do not load would leave the ledger unable to reopen.
        try {
          nextView = channelView(newConfig, this.#opts.clock);
        } catch (e) {
          ok = false;
          this.#log?.warn({ channel: this.channelId, blockNum, err: (e as Error).message }, 'config block unusable');
        }
      }
      if (ok) applied = newConfig;
      else
        this.#log?.warn(
          { channel: this.channelId, blockNum },
          'config block rejected: wrong channel or stale sequence',
        );
      result = this.#configResult(block, blockNum, ok);
    } else {
      checkedAt = performance.now();
      result = await this.#validate(block, blockNum, view, reads, staged?.prepared);
      for (const tx of result.transactions) {
        // A CONFIG envelope that does not decode as a channel config, or shares a block with others.
        if (tx.isConfig) {
          result.codes[tx.txNum] = TxValidationCode.INVALID_CONFIG_TRANSACTION;
          this.#log?.warn({ channel: this.channelId, blockNum, reason: configError }, 'config transaction rejected');
        }
      }
    }
    const codes = result.codes;

    const validatedAt = performance.now();
    await this.#writeBatch(block, blockNum, result, codes, applied !== undefined, bytes, false, reads);
    const writtenAt = performance.now();
    this.#height = blockNum + 1;
    this.#lastHash = computeBlockHash(block, this.#hash);
    if (applied) {
      this.#view = blockNum === 0 ? view : nextView;
      this.#log?.info({ channel: this.channelId, blockNum, sequence: applied.sequence }, 'channel config updated');
    }
    const durationMs = performance.now() - started;
    const transactions = result.transactions.map((t) => ({
      txNum: t.txNum,
      txId: t.txId,
      code: codes[t.txNum]!,
      chaincodeEvent: codes[t.txNum] === TxValidationCode.VALID ? t.chaincodeEvent : undefined,
    }));
    const namespaces = [...new Set(result.updates.map((u) => u.namespace))].sort();
    const committed: CommittedBlock = { blockNum, bytes, codes, transactions, config: applied, namespaces };
    if (this.#opts.privateData?.committed) {
      try {
        await this.#opts.privateData.committed({ block, blockNum, codes });
      } catch (e) {
        this.#log?.error({ channel: this.channelId, blockNum, err: (e as Error).message }, 'private data hook failed');
      }
    }
    if (this.#opts.afterCommit) {
      try {
        await this.#opts.afterCommit(committed);
      } catch (e) {
        this.#log?.error({ channel: this.channelId, blockNum, err: (e as Error).message }, 'after-commit hook failed');
      }
    }
    this.#notify(committed);
    const validTxs = codes.reduce((n, c) => n + (c === TxValidationCode.VALID ? 1 : 0), 0);
    const phases = {
      checkMs: (checkedAt ?? validatedAt) - started,
      validateMs: validatedAt - (checkedAt ?? validatedAt),
      writeMs: writtenAt - validatedAt,
    };
    return { blockNum, codes, validTxs, durationMs, phases };
  }

  #configResult(block: Block, blockNum: number, ok: boolean): BlockValidationResult {
    const envelope = block.data[0]!;
    const code = ok ? TxValidationCode.VALID : TxValidationCode.INVALID_CONFIG_TRANSACTION;
    return {
      blockNum,
      codes: new Uint8Array([code]),
      updates: [],
      history: [],
      transactions: [
        {
          txNum: 0,
          txId: envelopeTxId(envelope) ?? '',
          code,
          headerType: HeaderType.CONFIG,
          timestamp: txTimestamp(envelope),
          isConfig: ok,
          envelopeHash: this.#hash(envelope),
          chaincodeEvent: undefined,
          reason: ok ? undefined : 'config rejected',
        },
      ],
    };
  }

  async #validate(
    block: Block,
    blockNum: number,
    view: ChannelView,
    reads: BlockReads = newBlockReads(),
    prepared?: Promise<PreparedBlock | undefined>,
  ): Promise<BlockValidationResult> {
    const { state, blocks } = this.#stores;
    // Only blocks before this one count, so re-applying a stored block (recovery) sees what it saw.
    const before = (loc: TxLocation | undefined) => loc !== undefined && loc.blockNum < blockNum;
    const reader: StateReader = {
      getVersion: (ns, key) => state.getVersion(ns, key),
      getMetadata: (ns, key) => state.getMetadata(ns, key),
      // One getMany per namespace; the entries are kept for the write (applyUpdates reads them).
      getVersionsAndMetadata: async (ns, keys) => {
        const got = await state.getStates(ns, keys);
        return got.map((v, i) => {
          reads.states.set(stateCacheKey(ns, keys[i]!), v);
          return v === undefined
            ? undefined
            : { version: v.version, metadata: v.metadata.size === 0 ? undefined : v.metadata };
        });
      },
      rangeScan: (ns, start, end) => state.rangeScan(ns, start, end),
      isTxIdCommitted: async (txId) => {
        const loc = await blocks.getTxLocation(txId);
        reads.txLocations.set(txId, loc);
        return before(loc);
      },
      // The block's txIds in one getMany; the locations are kept for the block store's txId index.
      areTxIdsCommitted: async (txIds) => {
        const locs = await blocks.getTxLocations(txIds);
        return locs.map((loc, i) => {
          reads.txLocations.set(txIds[i]!, loc);
          return before(loc);
        });
      },
    };
    const chaincodePolicy =
      this.#opts.chaincodePolicy ?? ((_ns: string, config: ChannelConfig) => config.policies.Endorsement?.rule);
    const policies = createEndorsementPolicySource(view.application, {
      chaincode: (ns) => chaincodePolicy(ns, view.config),
      ...(this.#opts.collectionPolicy ? { collection: this.#opts.collectionPolicy } : {}),
    });
    return validateBlock(
      block,
      {
        channelId: this.channelId,
        stateReader: reader,
        msp: view.msps,
        policies,
        signatureVerifier: this.#verifier,
        hash: this.#hash,
      },
      (await prepared) ?? undefined,
    );
  }

  /**
   * Everything a block changes, in one batch. `bytes` undefined: the block is already in the block
   * store (recovery) and only what is derived from it is written.
   */
  async #writeBatch(
    block: Block,
    blockNum: number,
    result: BlockValidationResult,
    codes: Uint8Array,
    isConfig: boolean,
    bytes: Bytes | undefined,
    rewriteCodes = false,
    reads: BlockReads = newBlockReads(),
  ): Promise<void> {
    const { kv, blocks, state, history } = this.#stores;
    const batch = kv.batch();
    if (bytes !== undefined) {
      // What validation decoded and read: the block store neither decodes the block again nor
      // re-reads the txIds validation looked up.
      const txIds = new Array<string | undefined>(block.data.length).fill(undefined);
      for (const t of result.transactions) txIds[t.txNum] = t.txId === '' ? undefined : t.txId;
      await blocks.addBlock(batch, bytes, codes, { blockNum, txIds, known: reads.txLocations });
    }
    // The block store's codes key (ledger/keys.ts layout): what the accumulator leaves commit to.
    else if (rewriteCodes) batch.scoped(kv.sublevel('blocks')).put(tagged('c', u64(blockNum)), codes);
    await state.applyUpdates(batch, result.updates, blockNum + 1, reads.states);
    history.addEntries(batch, this.#historyWrites(result));
    if (this.#opts.privateData) {
      await this.#opts.privateData.prepare({ batch, block, blockNum, codes, result, stores: this.#stores });
    }
    if (isConfig) batch.scoped(this.#metaKv).put(META_LAST_CONFIG, u64(blockNum));
    this.#accStore.bind(batch);
    try {
      const txs: AccumulatedTx[] = result.transactions.map((t) => ({
        envelopeHash: t.envelopeHash,
        validationCode: codes[t.txNum]!,
      }));
      await this.#acc.appendBlock(blockNum, txs);
      const gate = this.#opts.commitGate;
      if (gate) await gate.exclusive(() => batch.write());
      else await batch.write();
      this.#digest = this.#acc.digest();
    } catch (e) {
      // The accumulator advanced in memory; reload it at the committed height.
      this.#acc = await LedgerAccumulator.open(this.#accStore, {
        channelId: this.channelId,
        hash: this.#hash,
        height: blockNum,
      });
      throw e;
    } finally {
      this.#accStore.bind(undefined);
    }
  }

  #historyWrites(result: BlockValidationResult): HistoryWrite[] {
    return result.history.map((h) => ({
      namespace: h.namespace,
      key: h.key,
      blockNum: h.version.blockNum,
      txNum: h.version.txNum,
    }));
  }

  /** Re-applies blocks the block store holds beyond the state savepoint (see the module comment). */
  async recover(from: number, to: number): Promise<void> {
    for (let n = from; n < to; n++) {
      const bytes = await this.#stores.blocks.getBlockBytes(n);
      if (!bytes) throw new LoomError('LEDGER_CORRUPT', `block ${n} missing from the block store`, { httpStatus: 500 });
      const block = decodeBlock(bytes);
      const cfg = configOf(block).config;
      const stored = await this.#stores.blocks.getValidationCodes(n);
      let result: BlockValidationResult;
      if (cfg) result = this.#configResult(block, n, stored?.[0] === TxValidationCode.VALID);
      else result = await this.#validate(block, n, this.#view!);
      const codes = result.codes;
      const rewriteCodes = !(stored && bytesEqual(stored, codes));
      if (rewriteCodes) {
        this.#log?.error({ channel: this.channelId, blockNum: n }, 'recovered block validates differently than stored');
      }
      const isConfig = cfg !== undefined && codes[0] === TxValidationCode.VALID;
      await this.#writeBatch(block, n, result, codes, isConfig, undefined, rewriteCodes);
      if (isConfig) this.#view = channelView(cfg, this.#opts.clock);
      this.#height = n + 1;
      this.#announced = n + 1;
      this.#lastHash = computeBlockHash(block, this.#hash);
      this.#log?.warn({ channel: this.channelId, blockNum: n }, 'recovered block beyond the state savepoint');
    }
  }

  getBlockBytes(blockNum: number): Promise<Bytes | undefined> {
    if (!Number.isSafeInteger(blockNum) || blockNum < 0 || blockNum >= this.#height) return Promise.resolve(undefined);
    return this.#stores.blocks.getBlockBytes(blockNum);
  }

  getBlock(blockNum: number): Promise<Block | undefined> {
    if (!Number.isSafeInteger(blockNum) || blockNum < 0 || blockNum >= this.#height) return Promise.resolve(undefined);
    return this.#stores.blocks.getBlock(blockNum);
  }

  getTxLocation(txId: string) {
    return this.#stores.blocks.getTxLocation(txId);
  }

  getState(namespace: string, key: string): Promise<VersionedValue | undefined> {
    return this.#stores.state.getState(namespace, key);
  }

  getHistoryForKey(namespace: string, key: string): AsyncIterable<KeyModification> {
    return this.#stores.history.getHistoryForKey(namespace, key);
  }

  digest(): LedgerDigest {
    return this.#digest;
  }

  async #txAt(blockNum: number, txNum: number) {
    const bytes = await this.#stores.blocks.getBlockBytes(blockNum);
    const codes = await this.#stores.blocks.getValidationCodes(blockNum);
    const envelope = bytes ? decodeBlock(bytes).data[txNum] : undefined;
    if (!envelope || !codes) {
      throw new LoomError(LedgerErrorCode.TX_NOT_FOUND, `no transaction ${txNum} in block ${blockNum}`, {
        httpStatus: 404,
      });
    }
    return { envelope, validationCode: codes[txNum]!, txId: envelopeTxId(envelope) ?? '' };
  }

  async proveTx(txId: string, digest: LedgerDigest = this.#digest): Promise<TxProof> {
    const loc = await this.#stores.blocks.getTxLocation(txId);
    if (!loc) throw new LoomError(LedgerErrorCode.TX_NOT_FOUND, `transaction ${txId} not found`, { httpStatus: 404 });
    const tx = await this.#txAt(loc.blockNum, loc.txNum);
    return this.#acc.proveTx({ blockNum: loc.blockNum, txNum: loc.txNum, ...tx }, digest);
  }

  async proveKey(
    namespace: string,
    key: string,
    version?: Version,
    digest: LedgerDigest = this.#digest,
  ): Promise<KeyProof> {
    let found: KeyModification | undefined;
    for await (const m of this.#stores.history.getHistoryForKey(namespace, key)) {
      if (m.blockNum >= digest.height) continue;
      if (version === undefined || (m.blockNum === version.blockNum && m.txNum === version.txNum)) {
        found = m;
        break;
      }
      if (m.blockNum < version.blockNum) break;
    }
    if (!found) {
      throw new LoomError(
        LedgerErrorCode.KEY_NOT_FOUND,
        `no write of ${namespace}/${key}${version ? ` at ${version.blockNum}:${version.txNum}` : ''}`,
        {
          httpStatus: 404,
          details: { namespace, key },
        },
      );
    }
    const tx = await this.#txAt(found.blockNum, found.txNum);
    return this.#acc.proveKey(
      {
        namespace,
        key,
        version: { blockNum: found.blockNum, txNum: found.txNum },
        isDelete: found.isDelete,
        valueHash: found.isDelete ? new Uint8Array(0) : this.#hash(found.value),
      },
      tx,
      digest,
    );
  }

  async stateHash(): Promise<Bytes> {
    return hashEntries(this.#stores.kv.sublevel('state'));
  }

  stores(): LedgerStores {
    return this.#stores;
  }

  onCommit(listener: (b: CommittedBlock) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  waitForBlock(blockNum: number, signal?: AbortSignal): Promise<boolean> {
    if (blockNum < this.#announced) return Promise.resolve(true);
    if (this.#closed || signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const w = {
        blockNum,
        resolve: (ok: boolean) => {
          this.#waiters.delete(w);
          signal?.removeEventListener('abort', onAbort);
          resolve(ok);
        },
      };
      const onAbort = () => w.resolve(false);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(w);
    });
  }

  writeBetweenBlocks(fill: (batch: WriteBatch, height: number) => Promise<void>): Promise<void> {
    const run = this.#queue.then(async () => {
      this.#checkOpen();
      const batch = this.#stores.kv.batch();
      await fill(batch, this.#height);
      if (batch.length === 0) return;
      const gate = this.#opts.commitGate;
      if (gate) await gate.exclusive(() => batch.write());
      else await batch.write();
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #notify(b: CommittedBlock): void {
    for (const l of this.#listeners) {
      try {
        l(b);
      } catch (e) {
        this.#log?.error({ err: e }, 'commit listener failed');
      }
    }
    this.#announced = b.blockNum + 1;
    for (const w of [...this.#waiters]) if (w.blockNum < this.#announced) w.resolve(true);
  }

  #checkOpen(): void {
    if (this.#closed)
      throw new LoomError(LedgerErrorCode.CLOSED, `ledger of ${this.channelId} is closed`, { httpStatus: 503 });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue;
    for (const w of [...this.#waiters]) w.resolve(false);
    this.#listeners.clear();
    await this.#ownVerifier?.close();
    await this.#stores.close();
  }
}

/** SHA-256 over `len(k) k len(v) v` of every entry of a store view, in key order. */
export async function hashEntries(kv: KV): Promise<Bytes> {
  const h = (await import('node:crypto')).createHash('sha256');
  const len = new Uint8Array(4);
  const dv = new DataView(len.buffer);
  for await (const [k, v] of kv.iterate()) {
    dv.setUint32(0, k.length);
    h.update(len);
    h.update(k);
    dv.setUint32(0, v.length);
    h.update(len);
    h.update(v);
  }
  return new Uint8Array(h.digest());
}

/** Opens the stores of one channel's ledger on a KV (tests may pass an in-memory one). */
export async function openChannelLedgerOnKv(kv: KV, opts: ChannelLedgerOptions): Promise<ChannelLedger> {
  checkChannelName(opts.channelId);
  const hash = opts.hash ?? sha256;
  const stores = await openLedgerStores(kv);
  const metaKv = kv.sublevel('meta');
  const accStore = createKvAccumulatorStore(kv.sublevel('acc'));
  const blockHeight = await stores.blocks.height();
  const savepoint = await stores.state.height();
  if (savepoint > blockHeight) {
    throw new LoomError(
      'LEDGER_CORRUPT',
      `state savepoint ${savepoint} is beyond the block store height ${blockHeight}`,
      {
        httpStatus: 500,
      },
    );
  }
  const acc = await LedgerAccumulator.open(accStore, { channelId: opts.channelId, hash, height: savepoint });
  let lastHash: Bytes = GENESIS_PREVIOUS_HASH;
  if (savepoint > 0) {
    const bytes = await stores.blocks.getBlockBytes(savepoint - 1);
    if (!bytes) throw new LoomError('LEDGER_CORRUPT', `block ${savepoint - 1} missing`, { httpStatus: 500 });
    lastHash = computeBlockHash(decodeBlock(bytes), hash);
  }
  let view: ChannelView | undefined;
  const lc = await metaKv.get(META_LAST_CONFIG);
  if (lc !== undefined) {
    const n = readU64(lc);
    const bytes = await stores.blocks.getBlockBytes(n);
    const cfg = bytes ? decodeConfigEnvelopeFromBlock(decodeBlock(bytes)) : undefined;
    if (!cfg) throw new LoomError('LEDGER_CORRUPT', `last config block ${n} unreadable`, { httpStatus: 500 });
    view = channelView(cfg, opts.clock);
  }
  const ledger = new LevelChannelLedger({
    stores,
    metaKv,
    accStore,
    acc,
    opts,
    hash,
    height: savepoint,
    lastHash,
    view,
  });
  if (blockHeight > savepoint) {
    opts.logger?.warn({ channel: opts.channelId, blockHeight, savepoint }, 'block store ahead of state: recovering');
    await ledger.recover(savepoint, blockHeight);
  }
  return ledger;
}

/** Opens (creating if needed) the ledger of `channelId` under `<dataDir>/ledgers/<channelId>`. */
export async function openChannelLedger(opts: ChannelLedgerOptions): Promise<ChannelLedger> {
  const path = channelLedgerPath(opts.dataDir, opts.channelId);
  await mkdir(path, { recursive: true });
  const kv = await openLedgerKV(path, opts.writeBufferMB === undefined ? {} : { writeBufferMB: opts.writeBufferMB });
  try {
    return await openChannelLedgerOnKv(kv, opts);
  } catch (e) {
    await kv.close();
    throw e;
  }
}

/** The block number in a block's bytes, without trusting anything else in it. */
export function blockNumberOf(block: Bytes): number {
  return decodeBlockHeader(decodeBlock(block).header).number;
}
