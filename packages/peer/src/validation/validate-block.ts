/**
 * Block validation, Fabric's rules: every transaction of a block gets a validation code, in block
 * order, and only valid transactions change state. Pure: the state it reads, the identities, the
 * policies and signature checking are injected (types.ts); no storage, no network, no clock.
 *
 * Two passes. The first decodes every envelope (once: everything later passes work on that decoded
 * form) and deserializes every identity, and hands the block's signatures (creators' and endorsers')
 * to the verifier in batches of a few dozen transactions as it goes, so a worker pool verifies while
 * the rest of the block is decoded. While the signatures are checked, every committed key, range and
 * txId the block can look at is read in one pass (`CommittedState.prefetch`: one batch read per
 * namespace, one for the txIds, the ranges concurrently). The second pass walks the transactions
 * in order applying the checks in Fabric's order — header, creator signature, txId, duplicate,
 * response payload, endorsement policy, MVCC, phantoms — in memory, against that committed state
 * overlaid with the writes of earlier valid transactions of the same block. A prefetch read that
 * fails is simply not cached: the second pass then reads it itself, only for a transaction that
 * gets that far, exactly as without prefetching.
 */
import {
  type Bytes,
  bytesEqual,
  type ChaincodeAction,
  type ChaincodeEvent,
  type ChannelHeader,
  computeProposalHash,
  computeTxId,
  decodeBlockHeader,
  decodeChaincodeAction,
  decodeChaincodeEvent,
  decodeChaincodeInvocationSpec,
  decodeChannelHeader,
  decodeEndorserTransaction,
  decodeEnvelope,
  decodeHeader,
  decodePayload,
  decodeProposalResponsePayload,
  decodeSerializedIdentity,
  decodeSignatureHeader,
  decodeTxReadWriteSet,
  type Block,
  fromUtf8,
  HeaderType,
  LoomError,
  type RangeQueryInfo,
  type SignerIdentity,
  toHex,
  type TxReadWriteSet,
  TxValidationCode,
  type Version,
} from '@loom/common';
import type { SignatureVerificationItem } from './signature-verifier.js';
import {
  type CommittedKey,
  compareKeys,
  hashedNamespace,
  type StateReader,
  VALIDATION_PARAMETER,
} from './state-reader.js';
import type {
  BlockValidationContext,
  BlockValidationResult,
  EndorsementPolicy,
  HistoryEntry,
  StateUpdate,
  TransactionValidationInfo,
  ValidationIdentity,
} from './types.js';

export const ValidationErrorCode = {
  /** The block itself (not one of its transactions) cannot be validated: unreadable header. */
  BAD_BLOCK: 'VALIDATION_BAD_BLOCK',
} as const;

type Code = TxValidationCode;

class TxInvalid {
  constructor(
    readonly code: Code,
    readonly reason: string,
  ) {}
}

/** What the first pass learned about one transaction. */
interface ParsedTx {
  txNum: number;
  envelopeHash: Bytes;
  txId: string;
  headerType: HeaderType | undefined;
  timestamp: number;
  /** Set when the envelope failed before the creator check (malformed, wrong channel, unknown type). */
  headerError?: TxInvalid;
  isConfig: boolean;
  nonce?: Bytes;
  creatorBytes?: Bytes;
  creator?: ValidationIdentity;
  creatorError?: string;
  /** Index into the block's signature batch. */
  creatorSig?: number;
  /** Set when the endorser transaction's data is malformed (checked after txId and duplicates). */
  dataError?: TxInvalid;
  endorsers: { identity: ValidationIdentity; sig: number }[];
  endorsementCount: number;
  invokedChaincode?: string;
  rwset?: TxReadWriteSet;
  event?: ChaincodeEvent;
  /** txId = sha256(nonce ‖ creator), established while prefetching. */
  txIdChecked?: boolean;
}

interface OverlayEntry {
  /** null: deleted by an earlier valid transaction of this block. */
  version: Version | null;
  /** undefined: unchanged by this block; null: removed (key deleted). */
  metadata: ReadonlyMap<string, Bytes> | null | undefined;
}

/** Signatures per verifier batch while a block is parsed (about 60 transactions of 3 signatures). */
const SIGNATURE_CHUNK = 180;

const errMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

function tryDo<T>(code: Code, what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new TxInvalid(code, `${what}: ${errMessage(e)}`);
  }
}

function versionsEqual(a: Version | null | undefined, b: Version | null | undefined): boolean {
  if (a == null || b == null) return a == null && b == null;
  return a.blockNum === b.blockNum && a.txNum === b.txNum;
}

/** What `prepareBlock` needs: no state, no policies (they may change with the blocks before this one). */
export type BlockPreparationContext = Pick<BlockValidationContext, 'channelId' | 'msp' | 'signatureVerifier' | 'hash'>;

/**
 * Pass 1 of a block's validation, started early: every envelope decoded, every identity
 * deserialized with `msp`, and every signature handed to the verifier (the worker pool verifies
 * while the caller goes on). It reads no state, so a committer can prepare block N+1 while block N
 * is still being validated or written; `validateBlock` uses it only when it was prepared for the
 * same block object with the same `msp` (a config block in between changes the MSPs: prepare again).
 */
export interface PreparedBlock {
  readonly block: Block;
  readonly msp: BlockValidationContext['msp'];
  /** @internal */
  readonly parsed: readonly ParsedTx[];
  /** @internal The answers for the gathered signatures, chunk by chunk as the verifier gives them. */
  readonly signatures: SignatureResults;
}

/**
 * The block's signature answers, filled in chunk by chunk: pass 2 checks transaction i as soon as
 * the chunks holding its signatures are answered, while the workers still verify later chunks.
 */
class SignatureResults {
  /** ok[i]: signature i verified. */
  readonly ok: boolean[] = [];
  readonly #chunks: { readonly end: number; readonly done: Promise<void> }[] = [];

  /** The verifier's answers for signatures [start, start + answers.length). */
  add(start: number, count: number, answers: Promise<boolean[]>): void {
    const done = answers.then((r) => {
      for (let i = 0; i < count; i++) this.ok[start + i] = r[i] === true;
    });
    // Awaited by `ready`; a prepared block that is never validated must not leave a rejection unhandled.
    done.catch(() => undefined);
    this.#chunks.push({ end: start + count, done });
  }

  /** Chunks [0, #settled) are known answered: `ready` does not wait on them again. */
  #settled = 0;

  /**
   * Resolves once signatures [0, index] are answered (rejects if their verification failed);
   * undefined when they are known answered already (no await needed).
   */
  ready(index: number): Promise<void> | undefined {
    // Chunk k holds signatures [chunks[k - 1].end, chunks[k].end).
    if (this.#settled > 0 && this.#chunks[this.#settled - 1]!.end > index) return undefined;
    return this.#waitFor(index);
  }

  async #waitFor(index: number): Promise<void> {
    for (let k = this.#settled; k < this.#chunks.length; k++) {
      const c = this.#chunks[k]!;
      await c.done;
      this.#settled = Math.max(this.#settled, k + 1);
      if (c.end > index) return;
    }
  }
}

/** FNV-1a over the length and the last 64 bytes: a cheap map key, always confirmed by a full compare. */
function tailHash(b: Bytes): number {
  let h = (0x811c9dc5 ^ b.length) >>> 0;
  for (let i = Math.max(0, b.length - 64); i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193) >>> 0;
  return h;
}

/** Starts pass 1 of `block` (see `PreparedBlock`). Never rejects for a bad transaction. */
export async function prepareBlock(block: Block, ctx: BlockPreparationContext): Promise<PreparedBlock> {
  const sigItems: SignatureVerificationItem[] = [];
  // A block names few identities thousands of times: each is deserialized once. Looked up by a
  // number hashed from the identity's last bytes (its certificate's signature) and confirmed by
  // comparing all bytes; a string key copied from ~900 bytes per lookup showed in profiles.
  // An MSP that deserializes synchronously gets its answer (or its error) remembered as is, so a
  // transaction's identities cost no await.
  type Known = { identity: ValidationIdentity | Promise<ValidationIdentity> } | { error: unknown };
  const identities = new Map<number, { serialized: Bytes; known: Known }[]>();
  const deserialize = (serialized: Bytes): ValidationIdentity | Promise<ValidationIdentity> => {
    const k = tailHash(serialized);
    let list = identities.get(k);
    if (list === undefined) {
      list = [];
      identities.set(k, list);
    }
    let known: Known | undefined;
    for (const e of list) {
      if (bytesEqual(e.serialized, serialized)) {
        known = e.known;
        break;
      }
    }
    if (known === undefined) {
      try {
        known = { identity: ctx.msp.deserialize(decodeSerializedIdentity(serialized)) };
      } catch (e) {
        known = { error: e };
      }
      list.push({ serialized, known });
    }
    if ('error' in known) throw known.error;
    return known.identity;
  };
  const addSig = (identity: ValidationIdentity, message: Bytes, signature: Bytes, messageTail?: Bytes): number => {
    sigItems.push({ certPem: identity.certPem, publicKeyDer: identity.publicKeyDer, message, messageTail, signature });
    return sigItems.length - 1;
  };
  // Signatures go to the verifier in chunks while the rest of the block is still being decoded, so
  // the worker pool verifies while this thread parses; each chunk is one batch (a few worker messages).
  const signatures = new SignatureResults();
  let dispatched = 0;
  const dispatch = () => {
    const n = sigItems.length - dispatched;
    if (n > 0) signatures.add(dispatched, n, ctx.signatureVerifier.verifyMany(sigItems.slice(dispatched)));
    dispatched = sigItems.length;
  };
  const parsed: ParsedTx[] = [];
  try {
    for (let txNum = 0; txNum < block.data.length; txNum++) {
      parsed.push(await parseTransaction(block.data[txNum]!, txNum, ctx, deserialize, addSig));
      if (sigItems.length - dispatched >= SIGNATURE_CHUNK) dispatch();
    }
  } finally {
    dispatch();
  }
  return { block, msp: ctx.msp, parsed, signatures };
}

/**
 * Validates every transaction of `block` in order. Throws LoomError VALIDATION_BAD_BLOCK only when
 * the block header is unreadable; a bad transaction never throws, it gets its code. `prepared`:
 * pass 1 already started by `prepareBlock` (used only when it matches `block` and `ctx.msp`).
 */
export async function validateBlock(
  block: Block,
  ctx: BlockValidationContext,
  prepared?: PreparedBlock | Promise<PreparedBlock>,
): Promise<BlockValidationResult> {
  let blockNum: number;
  try {
    blockNum = decodeBlockHeader(block.header).number;
  } catch (e) {
    throw new LoomError(ValidationErrorCode.BAD_BLOCK, `block header: ${errMessage(e)}`, { cause: e });
  }

  // Pass 1: decode, deserialize identities, gather every signature of the block (unless prepared).
  let p = prepared === undefined ? undefined : await prepared;
  if (p === undefined || p.block !== block || p.msp !== ctx.msp) p = await prepareBlock(block, ctx);
  const parsed = p.parsed;
  // The block's state reads run while the worker pool verifies; pass 2 waits, transaction by
  // transaction, only for the signatures that transaction carries.
  const committed = new CommittedState(ctx.stateReader);
  await committed.prefetch(parsed, ctx);
  const sigs = p.signatures;
  const sigOk = sigs.ok;

  // Pass 2: the ordered checks against committed state plus this block's earlier valid writes.
  const overlay = new Map<string, Map<string, OverlayEntry>>();
  const seenTxIds = new Set<string>();
  const codes = new Uint8Array(block.data.length);
  const updates: StateUpdate[] = [];
  const history: HistoryEntry[] = [];
  const transactions: TransactionValidationInfo[] = [];

  for (const tx of parsed) {
    let code: Code = TxValidationCode.VALID;
    let reason: string | undefined;
    try {
      if (tx.headerError) throw tx.headerError;
      if (!tx.isConfig) {
        let last = tx.creatorSig ?? -1;
        for (const e of tx.endorsers) last = Math.max(last, e.sig);
        const waiting = last >= 0 ? sigs.ready(last) : undefined;
        if (waiting) await waiting;
        await checkEndorserTransaction(tx, blockNum, ctx, committed, sigOk, seenTxIds, overlay, updates, history);
      }
    } catch (e) {
      if (!(e instanceof TxInvalid)) throw e;
      code = e.code;
      reason = e.reason;
    }
    codes[tx.txNum] = code;
    transactions.push({
      txNum: tx.txNum,
      txId: tx.txId,
      code,
      headerType: tx.headerType,
      timestamp: tx.timestamp,
      isConfig: tx.isConfig && code === TxValidationCode.VALID,
      envelopeHash: tx.envelopeHash,
      chaincodeEvent: code === TxValidationCode.VALID ? tx.event : undefined,
      reason,
    });
  }
  return { blockNum, codes, updates, history, transactions };
}

async function parseTransaction(
  envelopeBytes: Bytes,
  txNum: number,
  ctx: BlockPreparationContext,
  deserialize: (serialized: Bytes) => ValidationIdentity | Promise<ValidationIdentity>,
  addSig: (identity: ValidationIdentity, message: Bytes, signature: Bytes, messageTail?: Bytes) => number,
): Promise<ParsedTx> {
  const tx: ParsedTx = {
    txNum,
    envelopeHash: ctx.hash(envelopeBytes),
    txId: '',
    headerType: undefined,
    timestamp: 0,
    isConfig: false,
    endorsers: [],
    endorsementCount: 0,
  };
  let payloadBytes: Bytes;
  let signature: Bytes;
  let data: Bytes;
  let channelHeader: ChannelHeader;
  let headerBytes: Bytes;
  try {
    if (envelopeBytes.length === 0) throw new TxInvalid(TxValidationCode.NIL_ENVELOPE, 'empty envelope');
    const env = tryDo(TxValidationCode.BAD_PAYLOAD, 'envelope', () => decodeEnvelope(envelopeBytes));
    payloadBytes = env.payload;
    signature = env.signature;
    const payload = tryDo(TxValidationCode.BAD_PAYLOAD, 'payload', () => decodePayload(env.payload));
    data = payload.data;
    headerBytes = payload.header;
    const header = tryDo(TxValidationCode.BAD_COMMON_HEADER, 'header', () => decodeHeader(payload.header));
    channelHeader = tryDo(TxValidationCode.BAD_COMMON_HEADER, 'channel header', () =>
      decodeChannelHeader(header.channelHeader),
    );
    tx.txId = channelHeader.txId;
    tx.headerType = channelHeader.type;
    tx.timestamp = channelHeader.timestamp;
    const sigHeader = tryDo(TxValidationCode.BAD_COMMON_HEADER, 'signature header', () =>
      decodeSignatureHeader(header.signatureHeader),
    );
    if (sigHeader.nonce.length === 0) throw new TxInvalid(TxValidationCode.BAD_COMMON_HEADER, 'empty nonce');
    if (sigHeader.creator.length === 0) throw new TxInvalid(TxValidationCode.BAD_COMMON_HEADER, 'empty creator');
    tx.nonce = sigHeader.nonce;
    tx.creatorBytes = sigHeader.creator;
    if (channelHeader.channelId !== ctx.channelId) {
      throw new TxInvalid(
        TxValidationCode.TARGET_CHAIN_NOT_FOUND,
        `transaction is for channel ${JSON.stringify(channelHeader.channelId)}, not ${JSON.stringify(ctx.channelId)}`,
      );
    }
    if (channelHeader.type === HeaderType.CONFIG) {
      // Config transactions are validated and applied by the config path (committer), not here.
      tx.isConfig = true;
      return tx;
    }
    if (channelHeader.type !== HeaderType.ENDORSER_TRANSACTION) {
      throw new TxInvalid(
        TxValidationCode.UNKNOWN_TX_TYPE,
        `header type ${channelHeader.type} is not committed by peers`,
      );
    }
  } catch (e) {
    if (!(e instanceof TxInvalid)) throw e;
    tx.headerError = e;
    return tx;
  }

  try {
    const creator = deserialize(tx.creatorBytes);
    tx.creator = creator instanceof Promise ? await creator : creator;
    tx.creatorSig = addSig(tx.creator, payloadBytes, signature);
  } catch (e) {
    tx.creatorError = errMessage(e);
  }

  try {
    const etx = tryDo(TxValidationCode.BAD_PAYLOAD, 'endorser transaction', () => decodeEndorserTransaction(data));
    const spec = tryDo(TxValidationCode.BAD_PAYLOAD, 'chaincode invocation spec', () =>
      decodeChaincodeInvocationSpec(etx.input),
    );
    tx.invokedChaincode = spec.chaincodeName;
    let extensionName: string | undefined;
    try {
      extensionName = fromUtf8(channelHeader.extension);
    } catch {
      extensionName = undefined;
    }
    if (extensionName !== spec.chaincodeName) {
      throw new TxInvalid(
        TxValidationCode.BAD_HEADER_EXTENSION,
        'channel header names another chaincode than the input',
      );
    }
    const prp = tryDo(TxValidationCode.BAD_RESPONSE_PAYLOAD, 'proposal response payload', () =>
      decodeProposalResponsePayload(etx.proposalResponsePayload),
    );
    // The endorsers signed a response to exactly this header and input (not a replay of another proposal).
    if (!bytesEqual(prp.proposalHash, computeProposalHash(headerBytes, etx.input, ctx.hash))) {
      throw new TxInvalid(TxValidationCode.BAD_RESPONSE_PAYLOAD, 'proposal hash does not match header and input');
    }
    const action: ChaincodeAction = tryDo(TxValidationCode.BAD_RESPONSE_PAYLOAD, 'chaincode action', () =>
      decodeChaincodeAction(prp.extension),
    );
    if (action.chaincodeName !== spec.chaincodeName) {
      throw new TxInvalid(TxValidationCode.INVALID_CHAINCODE, 'response is from another chaincode than invoked');
    }
    if (action.response.status >= 400) {
      throw new TxInvalid(
        TxValidationCode.INVALID_ENDORSER_TRANSACTION,
        `chaincode response status ${action.response.status}: nothing was endorsed`,
      );
    }
    tx.rwset = tryDo(TxValidationCode.BAD_RWSET, 'read-write set', () => decodeTxReadWriteSet(action.results));
    if (action.events.length > 0) {
      tx.event = tryDo(TxValidationCode.BAD_RESPONSE_PAYLOAD, 'chaincode event', () =>
        decodeChaincodeEvent(action.events),
      );
    }
    tx.endorsementCount = etx.endorsements.length;
    for (const e of etx.endorsements) {
      // An endorsement from an identity the channel does not accept simply does not count.
      try {
        const d = deserialize(e.endorser);
        const identity = d instanceof Promise ? await d : d;
        // Signed bytes: endorsementSignedBytes(payload, endorser), passed as two parts (not concatenated).
        const sig = addSig(identity, etx.proposalResponsePayload, e.signature, e.endorser);
        tx.endorsers.push({ identity, sig });
      } catch {
        // not counted
      }
    }
  } catch (e) {
    if (!(e instanceof TxInvalid)) throw e;
    tx.dataError = e;
  }
  return tx;
}

async function checkEndorserTransaction(
  tx: ParsedTx,
  blockNum: number,
  ctx: BlockValidationContext,
  committed: CommittedState,
  sigOk: boolean[],
  seenTxIds: Set<string>,
  overlay: Map<string, Map<string, OverlayEntry>>,
  updates: StateUpdate[],
  history: HistoryEntry[],
): Promise<void> {
  if (!tx.creator || tx.creatorSig === undefined) {
    throw new TxInvalid(TxValidationCode.BAD_CREATOR_SIGNATURE, `creator identity invalid: ${tx.creatorError}`);
  }
  if (sigOk[tx.creatorSig] !== true) {
    throw new TxInvalid(TxValidationCode.BAD_CREATOR_SIGNATURE, 'creator signature over the payload does not verify');
  }
  if (tx.txIdChecked !== true && tx.txId !== computeTxId(tx.nonce!, tx.creatorBytes!, ctx.hash)) {
    throw new TxInvalid(TxValidationCode.BAD_PROPOSAL_TXID, 'txId is not sha256(nonce ‖ creator)');
  }
  if (seenTxIds.has(tx.txId)) {
    throw new TxInvalid(TxValidationCode.DUPLICATE_TXID, 'txId appears earlier in this block');
  }
  seenTxIds.add(tx.txId);
  const committedTx = committed.isTxIdCommitted(tx.txId);
  if (typeof committedTx === 'boolean' ? committedTx : await committedTx) {
    throw new TxInvalid(TxValidationCode.DUPLICATE_TXID, 'txId already committed');
  }
  if (tx.dataError) throw tx.dataError;
  const rwset = tx.rwset!;

  const endorsers: SignerIdentity[] = tx.endorsers.filter((e) => sigOk[e.sig] === true).map((e) => e.identity);
  if (tx.endorsementCount === 0) throw new TxInvalid(TxValidationCode.ENDORSEMENT_POLICY_FAILURE, 'no endorsements');

  const state = new StateView(committed, overlay);
  await checkEndorsementPolicies(tx, rwset, endorsers, ctx, state);
  await checkReads(rwset, state);

  // Valid: the writes take effect, for later transactions of this block and for the commit.
  const version: Version = { blockNum, txNum: tx.txNum };
  for (const ns of rwset.nsRwsets) {
    for (const w of ns.rwset.writes) {
      const u: StateUpdate = {
        namespace: ns.namespace,
        collection: undefined,
        key: w.key,
        kind: w.isDelete ? 'delete' : 'put',
        value: w.isDelete ? undefined : w.value,
        metadata: undefined,
        isPurge: false,
        version,
      };
      updates.push(u);
      state.apply(ns.namespace, u);
      history.push({
        namespace: ns.namespace,
        key: w.key,
        version,
        isDelete: w.isDelete,
      });
    }
    for (const m of ns.rwset.metadataWrites) {
      // Metadata of a key that does not exist is dropped, as in Fabric.
      const v = state.version(ns.namespace, m.key);
      if ((v instanceof Promise ? await v : v) === undefined) continue;
      const u: StateUpdate = {
        namespace: ns.namespace,
        collection: undefined,
        key: m.key,
        kind: 'metadata',
        value: undefined,
        metadata: m.entries,
        isPurge: false,
        version,
      };
      updates.push(u);
      state.apply(ns.namespace, u);
    }
    for (const c of ns.collectionHashedRwsets) {
      const hns = hashedNamespace(ns.namespace, c.collectionName);
      for (const w of c.hashedRwset.hashedWrites) {
        const u: StateUpdate = {
          namespace: ns.namespace,
          collection: c.collectionName,
          key: toHex(w.keyHash),
          kind: w.isDelete ? 'delete' : 'put',
          value: w.isDelete ? undefined : w.valueHash,
          metadata: undefined,
          isPurge: w.isPurge,
          version,
        };
        updates.push(u);
        state.apply(hns, u);
      }
      for (const m of c.hashedRwset.metadataWrites) {
        const v = state.version(hns, toHex(m.keyHash));
        if ((v instanceof Promise ? await v : v) === undefined) continue;
        const u: StateUpdate = {
          namespace: ns.namespace,
          collection: c.collectionName,
          key: toHex(m.keyHash),
          kind: 'metadata',
          value: undefined,
          metadata: m.entries,
          isPurge: false,
          version,
        };
        updates.push(u);
        state.apply(hns, u);
      }
    }
  }
}

interface RangeEntry {
  key: string;
  version: Version;
}

/** A prefetched committed range: its first entries, and whether they are all there are. */
interface PrefetchedRange {
  readonly entries: readonly RangeEntry[];
  readonly complete: boolean;
}

/**
 * The committed state one block's validation reads, prefetched in one pass before the ordered
 * checks. Lookups that were not prefetched (or whose prefetch failed) go to the reader.
 */
class CommittedState {
  readonly #reader: StateReader;
  /** ns → key → committed entry; null: the key does not exist. */
  readonly #keys = new Map<string, Map<string, CommittedKey | null>>();
  readonly #ranges = new Map<string, PrefetchedRange>();
  readonly #txIds = new Map<string, boolean>();

  constructor(reader: StateReader) {
    this.#reader = reader;
  }

  /** Reads every key, range and txId the block's transactions can look at. Never rejects. */
  async prefetch(parsed: readonly ParsedTx[], ctx: BlockValidationContext): Promise<void> {
    const keys = new Map<string, Set<string>>();
    const written = new Map<string, Set<string>>();
    const ranges = new Map<string, { ns: string; start: string; end: string; limit: number }>();
    const txIds = new Set<string>();
    const add = (m: Map<string, Set<string>>, ns: string, key: string) => {
      let s = m.get(ns);
      if (!s) m.set(ns, (s = new Set()));
      s.add(key);
    };
    for (const tx of parsed) {
      if (tx.headerError || tx.isConfig || !tx.creator) continue;
      // Only a txId the duplicate check can reach (it must be sha256(nonce ‖ creator)) is looked up.
      if (tx.nonce && tx.creatorBytes && tx.txId === computeTxId(tx.nonce, tx.creatorBytes, ctx.hash)) {
        tx.txIdChecked = true;
        txIds.add(tx.txId);
      }
      if (tx.dataError || !tx.rwset) continue;
      for (const ns of tx.rwset.nsRwsets) {
        const n = ns.namespace;
        for (const r of ns.rwset.reads) add(keys, n, r.key);
        for (const w of ns.rwset.writes) add(written, n, w.key);
        for (const m of ns.rwset.metadataWrites) add(written, n, m.key);
        for (const q of ns.rwset.rangeQueriesInfo) {
          const limit = q.itrExhausted ? q.reads.length + 1 : q.reads.length;
          const id = rangeId(n, q.startKey, q.endKey);
          const prev = ranges.get(id);
          if (!prev || prev.limit < limit) ranges.set(id, { ns: n, start: q.startKey, end: q.endKey, limit });
        }
        for (const c of ns.collectionHashedRwsets) {
          const hns = hashedNamespace(n, c.collectionName);
          for (const r of c.hashedRwset.hashedReads) add(keys, hns, toHex(r.keyHash));
          for (const w of c.hashedRwset.hashedWrites) add(written, hns, toHex(w.keyHash));
          for (const m of c.hashedRwset.metadataWrites) add(written, hns, toHex(m.keyHash));
        }
      }
    }
    for (const [ns, ks] of written) for (const k of ks) add(keys, ns, k);
    const jobs: Promise<void>[] = [];
    for (const [ns, ks] of keys) jobs.push(this.#fetchKeys(ns, [...ks]));
    for (const [id, r] of ranges) {
      // The block's own writes can hide or replace at most one committed entry each.
      jobs.push(this.#fetchRange(id, r.ns, r.start, r.end, r.limit + (written.get(r.ns)?.size ?? 0)));
    }
    const ids = [...txIds];
    const batch = this.#reader.areTxIdsCommitted?.bind(this.#reader);
    jobs.push(
      batch && ids.length > 0
        ? (async () => {
            try {
              const found = await batch(ids);
              if (found.length === ids.length)
                for (const [i, t] of ids.entries()) this.#txIds.set(t, found[i] === true);
            } catch {
              // not cached: the ordered check reads each again and reports what it reports
            }
          })()
        : Promise.resolve(),
      ...(batch
        ? []
        : ids.map(async (txId) => {
            try {
              this.#txIds.set(txId, await this.#reader.isTxIdCommitted(txId));
            } catch {
              // not cached: the ordered check reads it again and reports what it reports
            }
          })),
    );
    await Promise.all(jobs);
  }

  async #fetchKeys(ns: string, keys: string[]): Promise<void> {
    let m = this.#keys.get(ns);
    if (!m) this.#keys.set(ns, (m = new Map()));
    const cache = m;
    if (this.#reader.getVersionsAndMetadata) {
      try {
        const got = await this.#reader.getVersionsAndMetadata(ns, keys);
        if (got.length === keys.length) {
          for (const [i, k] of keys.entries()) cache.set(k, got[i] ?? null);
          return;
        }
      } catch {
        // e.g. one unreadable key: fall back to one read per key, so only that one stays uncached
      }
    }
    await Promise.all(
      keys.map(async (k) => {
        try {
          const [version, metadata] = await Promise.all([
            this.#reader.getVersion(ns, k),
            this.#reader.getMetadata(ns, k),
          ]);
          cache.set(k, version === undefined ? null : { version, metadata });
        } catch {
          // not cached
        }
      }),
    );
  }

  async #fetchRange(id: string, ns: string, start: string, end: string, bound: number): Promise<void> {
    const entries: RangeEntry[] = [];
    try {
      let complete = true;
      for await (const e of this.#reader.rangeScan(ns, start, end)) {
        if (entries.length >= bound) {
          complete = false;
          break;
        }
        entries.push({ key: e.key, version: e.version });
      }
      this.#ranges.set(id, { entries, complete });
    } catch {
      // not cached
    }
  }

  // Answered synchronously from the prefetch when it has the answer, else by the reader (a promise).
  version(ns: string, key: string): Version | undefined | Promise<Version | undefined> {
    const c = this.#keys.get(ns)?.get(key);
    if (c !== undefined) return c?.version;
    return this.#reader.getVersion(ns, key);
  }

  metadata(
    ns: string,
    key: string,
  ): ReadonlyMap<string, Bytes> | undefined | Promise<ReadonlyMap<string, Bytes> | undefined> {
    const c = this.#keys.get(ns)?.get(key);
    if (c !== undefined) return c?.metadata;
    return this.#reader.getMetadata(ns, key);
  }

  isTxIdCommitted(txId: string): boolean | Promise<boolean> {
    const c = this.#txIds.get(txId);
    return c ?? this.#reader.isTxIdCommitted(txId);
  }

  /** Committed entries of `[start, end)` in order: the prefetched ones, then (when needed) a live scan. */
  rangeScan(ns: string, start: string, end: string): AsyncIterable<RangeEntry> {
    const r = this.#ranges.get(rangeId(ns, start, end));
    if (!r) return this.#reader.rangeScan(ns, start, end);
    const reader = this.#reader;
    return {
      async *[Symbol.asyncIterator]() {
        yield* r.entries;
        if (r.complete) return;
        // Beyond what was prefetched (cannot happen within the bound, kept for safety): skip what was yielded.
        let skip = r.entries.length;
        for await (const e of reader.rangeScan(ns, start, end)) {
          if (skip > 0) {
            skip--;
            continue;
          }
          yield e;
        }
      },
    };
  }
}

const rangeId = (ns: string, start: string, end: string) => `${ns}\u0000${start}\u0000${end}`;

/** Committed state seen through the writes of this block's earlier valid transactions. */
class StateView {
  readonly #committed: CommittedState;
  readonly #overlay: Map<string, Map<string, OverlayEntry>>;

  constructor(committed: CommittedState, overlay: Map<string, Map<string, OverlayEntry>>) {
    this.#committed = committed;
    this.#overlay = overlay;
  }

  version(ns: string, key: string): Version | undefined | Promise<Version | undefined> {
    const o = this.#overlay.get(ns)?.get(key);
    if (o) return o.version ?? undefined;
    return this.#committed.version(ns, key);
  }

  metadata(
    ns: string,
    key: string,
  ): ReadonlyMap<string, Bytes> | undefined | Promise<ReadonlyMap<string, Bytes> | undefined> {
    const o = this.#overlay.get(ns)?.get(key);
    if (o && o.metadata !== undefined) return o.metadata ?? undefined;
    if (o && o.version === null) return undefined;
    return this.#committed.metadata(ns, key);
  }

  apply(ns: string, u: StateUpdate): void {
    let m = this.#overlay.get(ns);
    if (!m) {
      m = new Map();
      this.#overlay.set(ns, m);
    }
    const prev = m.get(u.key);
    if (u.kind === 'delete') m.set(u.key, { version: null, metadata: null });
    else if (u.kind === 'put') m.set(u.key, { version: u.version, metadata: prev?.metadata });
    // A metadata write bumps the key's version too, as in Fabric (callers skip missing keys).
    else m.set(u.key, { version: u.version, metadata: u.metadata ?? null });
  }

  /** The range `[start, end)` as committed state plus this block's writes would return it, first `limit` keys. */
  async range(ns: string, start: string, end: string, limit: number): Promise<{ key: string; version: Version }[]> {
    const inRange = (k: string) => compareKeys(k, start) >= 0 && (end === '' || compareKeys(k, end) < 0);
    const ov = this.#overlay.get(ns);
    const overlayKeys = ov ? [...ov.keys()].filter(inRange).sort(compareKeys) : [];
    const out: { key: string; version: Version }[] = [];
    const it = this.#committed.rangeScan(ns, start, end)[Symbol.asyncIterator]();
    let c = await it.next();
    let oi = 0;
    try {
      while (out.length < limit) {
        const ck: string | undefined = c.done ? undefined : c.value.key;
        const ok = overlayKeys[oi];
        if (ck === undefined && ok === undefined) break;
        const cmp = ck === undefined ? 1 : ok === undefined ? -1 : compareKeys(ck, ok);
        if (cmp < 0) {
          out.push({ key: ck!, version: (c.value as { version: Version }).version });
          c = await it.next();
        } else {
          const v = ov!.get(ok!)!.version;
          if (v) out.push({ key: ok!, version: v });
          oi++;
          if (cmp === 0) c = await it.next();
        }
      }
    } finally {
      if (!c.done) await it.return?.();
    }
    return out;
  }
}

async function checkReads(rwset: TxReadWriteSet, state: StateView): Promise<void> {
  for (const ns of rwset.nsRwsets) {
    for (const r of ns.rwset.reads) {
      const v = state.version(ns.namespace, r.key);
      const current = v instanceof Promise ? await v : v;
      if (!versionsEqual(r.version, current)) {
        throw new TxInvalid(
          TxValidationCode.MVCC_READ_CONFLICT,
          `read of ${ns.namespace}/${r.key} is stale: read ${fmtVersion(r.version)}, now ${fmtVersion(current)}`,
        );
      }
    }
    for (const c of ns.collectionHashedRwsets) {
      const hns = hashedNamespace(ns.namespace, c.collectionName);
      for (const r of c.hashedRwset.hashedReads) {
        const v = state.version(hns, toHex(r.keyHash));
        const current = v instanceof Promise ? await v : v;
        if (!versionsEqual(r.version, current)) {
          throw new TxInvalid(
            TxValidationCode.MVCC_READ_CONFLICT,
            `private read in ${ns.namespace}/${c.collectionName} is stale`,
          );
        }
      }
    }
    for (const q of ns.rwset.rangeQueriesInfo) await checkRange(ns.namespace, q, state);
  }
}

/** Re-executes a range query: the same keys at the same versions, and nothing more if it ran to the end. */
async function checkRange(ns: string, q: RangeQueryInfo, state: StateView): Promise<void> {
  const limit = q.itrExhausted ? q.reads.length + 1 : q.reads.length;
  const now = await state.range(ns, q.startKey, q.endKey, limit);
  const phantom = (why: string) =>
    new TxInvalid(
      TxValidationCode.PHANTOM_READ_CONFLICT,
      `range [${JSON.stringify(q.startKey)}, ${JSON.stringify(q.endKey)}) in ${ns}: ${why}`,
    );
  for (let i = 0; i < q.reads.length; i++) {
    const r = q.reads[i]!;
    const n = now[i];
    if (!n) throw phantom(`key ${JSON.stringify(r.key)} no longer in range`);
    if (n.key !== r.key) throw phantom(`found ${JSON.stringify(n.key)} where ${JSON.stringify(r.key)} was read`);
    if (!versionsEqual(r.version, n.version)) throw phantom(`key ${JSON.stringify(r.key)} changed`);
  }
  if (now.length > q.reads.length) throw phantom(`key ${JSON.stringify(now[q.reads.length]!.key)} appeared`);
}

const fmtVersion = (v: Version | null | undefined) => (v ? `(${v.blockNum},${v.txNum})` : 'absent');

/**
 * Fabric's endorsement rules per namespace the transaction writes (and the invoked chaincode's even
 * when it writes nothing): a key with a `VALIDATION_PARAMETER` needs that key-level policy instead of
 * any other; a private write needs its collection's endorsement policy when the collection has one;
 * every other write needs the chaincode's policy. A system rule for a key (`keyRule`: `_lifecycle`
 * approvals need the approving org's peer) replaces all of these for that key.
 */
async function checkEndorsementPolicies(
  tx: ParsedTx,
  rwset: TxReadWriteSet,
  endorsers: readonly SignerIdentity[],
  ctx: BlockValidationContext,
  state: StateView,
): Promise<void> {
  const results = new Map<EndorsementPolicy, boolean>();
  const holds = (p: EndorsementPolicy) => {
    let r = results.get(p);
    if (r === undefined) {
      r = p.evaluate(endorsers);
      results.set(p, r);
    }
    return r;
  };
  const fail = (why: string) => new TxInvalid(TxValidationCode.ENDORSEMENT_POLICY_FAILURE, why);
  const keyLevelOf = (
    meta: ReadonlyMap<string, Bytes> | undefined,
    ns: string,
    key: string,
  ): EndorsementPolicy | undefined => {
    const vp = meta?.get(VALIDATION_PARAMETER);
    if (vp === undefined) return undefined;
    try {
      return ctx.policies.keyLevelPolicy(vp);
    } catch (e) {
      throw fail(`key-level policy of ${ns}/${key} is unreadable: ${errMessage(e)}`);
    }
  };

  const keyLevel = (
    ns: string,
    key: string,
  ): EndorsementPolicy | undefined | Promise<EndorsementPolicy | undefined> => {
    const m = state.metadata(ns, key);
    return m instanceof Promise ? m.then((meta) => keyLevelOf(meta, ns, key)) : keyLevelOf(m, ns, key);
  };

  if (tx.invokedChaincode !== undefined && !rwset.nsRwsets.some((n) => n.namespace === tx.invokedChaincode)) {
    // Read nothing, wrote nothing: the invoked chaincode still endorsed the result.
    const p = ctx.policies.chaincodePolicy(tx.invokedChaincode);
    const policy = p instanceof Promise ? await p : p;
    if (!policy)
      throw new TxInvalid(TxValidationCode.INVALID_CHAINCODE, `chaincode ${tx.invokedChaincode} not defined`);
    if (!holds(policy)) throw fail(`endorsement policy of ${tx.invokedChaincode} not satisfied`);
  }
  for (const ns of rwset.nsRwsets) {
    const hashedWrites =
      ns.collectionHashedRwsets.length === 0
        ? ns.collectionHashedRwsets
        : ns.collectionHashedRwsets.filter(
            (c) => c.hashedRwset.hashedWrites.length > 0 || c.hashedRwset.metadataWrites.length > 0,
          );
    const writes = ns.rwset.writes.length + ns.rwset.metadataWrites.length + hashedWrites.length;
    if (writes === 0 && ns.namespace !== tx.invokedChaincode) continue;
    const cp = ctx.policies.chaincodePolicy(ns.namespace);
    const ccPolicy = cp instanceof Promise ? await cp : cp;
    if (!ccPolicy) throw new TxInvalid(TxValidationCode.INVALID_CHAINCODE, `chaincode ${ns.namespace} not defined`);
    let needChaincodePolicy = writes === 0;
    // Each written key once (a key both written and given metadata counts once), in write order.
    const keyCount = ns.rwset.writes.length + ns.rwset.metadataWrites.length;
    const seen = keyCount > 1 ? new Set<string>() : undefined;
    for (let i = 0; i < keyCount; i++) {
      const key =
        i < ns.rwset.writes.length ? ns.rwset.writes[i]!.key : ns.rwset.metadataWrites[i - ns.rwset.writes.length]!.key;
      if (seen) {
        if (seen.has(key)) continue;
        seen.add(key);
      }
      const rule = ctx.policies.keyRule?.(ns.namespace, key);
      if (rule) {
        if (!holds(rule.policy)) throw fail(`write of ${ns.namespace}/${key} ${rule.requirement}`);
        continue;
      }
      const k = keyLevel(ns.namespace, key);
      const kp = k instanceof Promise ? await k : k;
      if (!kp) needChaincodePolicy = true;
      else if (!holds(kp)) throw fail(`key-level endorsement policy of ${ns.namespace}/${key} not satisfied`);
    }
    for (const c of hashedWrites) {
      const hns = hashedNamespace(ns.namespace, c.collectionName);
      const collPolicy = await ctx.policies.collectionPolicy(ns.namespace, c.collectionName);
      const keys = new Set([
        ...c.hashedRwset.hashedWrites.map((w) => toHex(w.keyHash)),
        ...c.hashedRwset.metadataWrites.map((m) => toHex(m.keyHash)),
      ]);
      for (const key of keys) {
        const k = keyLevel(hns, key);
        const kp = k instanceof Promise ? await k : k;
        const p = kp ?? collPolicy;
        if (!p) needChaincodePolicy = true;
        else if (!holds(p)) {
          throw fail(
            `${kp ? 'key-level' : 'collection'} endorsement policy of ${ns.namespace}/${c.collectionName} not satisfied`,
          );
        }
      }
    }
    if (needChaincodePolicy && !holds(ccPolicy)) throw fail(`endorsement policy of ${ns.namespace} not satisfied`);
  }
}
