/**
 * Block validation, Fabric's rules: every transaction of a block gets a validation code, in block
 * order, and only valid transactions change state. Pure: the state it reads, the identities, the
 * policies and signature checking are injected (types.ts); no storage, no network, no clock.
 *
 * Two passes. The first decodes every envelope and deserializes every identity, and sends all the
 * block's signatures (creators' and endorsers') to the verifier in one batch so a worker pool can
 * spread them. The second walks the transactions in order applying the checks in Fabric's order —
 * header, creator signature, txId, duplicate, response payload, endorsement policy, MVCC, phantoms —
 * against committed state overlaid with the writes of earlier valid transactions of the same block.
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
  endorsementSignedBytes,
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
import { compareKeys, hashedNamespace, VALIDATION_PARAMETER } from './state-reader.js';
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
}

interface OverlayEntry {
  /** null: deleted by an earlier valid transaction of this block. */
  version: Version | null;
  /** undefined: unchanged by this block; null: removed (key deleted). */
  metadata: ReadonlyMap<string, Bytes> | null | undefined;
}

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

/**
 * Validates every transaction of `block` in order. Throws LoomError VALIDATION_BAD_BLOCK only when
 * the block header is unreadable; a bad transaction never throws, it gets its code.
 */
export async function validateBlock(block: Block, ctx: BlockValidationContext): Promise<BlockValidationResult> {
  let blockNum: number;
  try {
    blockNum = decodeBlockHeader(block.header).number;
  } catch (e) {
    throw new LoomError(ValidationErrorCode.BAD_BLOCK, `block header: ${errMessage(e)}`, { cause: e });
  }

  // Pass 1: decode, deserialize identities, gather every signature of the block.
  const sigItems: SignatureVerificationItem[] = [];
  const identities = new Map<string, Promise<ValidationIdentity>>();
  const deserialize = (serialized: Bytes): Promise<ValidationIdentity> => {
    const k = toHex(serialized);
    let p = identities.get(k);
    if (!p) {
      p = (async () => ctx.msp.deserialize(decodeSerializedIdentity(serialized)))();
      identities.set(k, p);
    }
    return p;
  };
  const addSig = (identity: ValidationIdentity, message: Bytes, signature: Bytes): number => {
    sigItems.push({ certPem: identity.certPem, publicKeyDer: identity.publicKeyDer, message, signature });
    return sigItems.length - 1;
  };
  const parsed: ParsedTx[] = [];
  for (let txNum = 0; txNum < block.data.length; txNum++) {
    parsed.push(await parseTransaction(block.data[txNum]!, txNum, ctx, deserialize, addSig));
  }
  const sigOk = sigItems.length > 0 ? await ctx.signatureVerifier.verifyMany(sigItems) : [];

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
        await checkEndorserTransaction(tx, blockNum, ctx, sigOk, seenTxIds, overlay, updates, history);
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
  ctx: BlockValidationContext,
  deserialize: (serialized: Bytes) => Promise<ValidationIdentity>,
  addSig: (identity: ValidationIdentity, message: Bytes, signature: Bytes) => number,
): Promise<ParsedTx> {
  const tx: ParsedTx = {
    txNum,
    envelopeHash: ctx.hash(envelopeBytes),
    txId: '',
    headerType: undefined,
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
    tx.creator = await deserialize(tx.creatorBytes);
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
        const identity = await deserialize(e.endorser);
        const sig = addSig(identity, endorsementSignedBytes(etx.proposalResponsePayload, e.endorser), e.signature);
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
  if (tx.txId !== computeTxId(tx.nonce!, tx.creatorBytes!, ctx.hash)) {
    throw new TxInvalid(TxValidationCode.BAD_PROPOSAL_TXID, 'txId is not sha256(nonce ‖ creator)');
  }
  if (seenTxIds.has(tx.txId)) {
    throw new TxInvalid(TxValidationCode.DUPLICATE_TXID, 'txId appears earlier in this block');
  }
  seenTxIds.add(tx.txId);
  if (await ctx.stateReader.isTxIdCommitted(tx.txId)) {
    throw new TxInvalid(TxValidationCode.DUPLICATE_TXID, 'txId already committed');
  }
  if (tx.dataError) throw tx.dataError;
  const rwset = tx.rwset!;

  const endorsers: SignerIdentity[] = tx.endorsers.filter((e) => sigOk[e.sig] === true).map((e) => e.identity);
  if (tx.endorsementCount === 0) throw new TxInvalid(TxValidationCode.ENDORSEMENT_POLICY_FAILURE, 'no endorsements');

  const state = new StateView(ctx, overlay);
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
        valueHash: w.isDelete ? new Uint8Array(0) : ctx.hash(w.value),
      });
    }
    for (const m of ns.rwset.metadataWrites) {
      // Metadata of a key that does not exist is dropped, as in Fabric.
      if ((await state.version(ns.namespace, m.key)) === undefined) continue;
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
        if ((await state.version(hns, toHex(m.keyHash))) === undefined) continue;
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

/** Committed state seen through the writes of this block's earlier valid transactions. */
class StateView {
  readonly #ctx: BlockValidationContext;
  readonly #overlay: Map<string, Map<string, OverlayEntry>>;

  constructor(ctx: BlockValidationContext, overlay: Map<string, Map<string, OverlayEntry>>) {
    this.#ctx = ctx;
    this.#overlay = overlay;
  }

  async version(ns: string, key: string): Promise<Version | undefined> {
    const o = this.#overlay.get(ns)?.get(key);
    if (o) return o.version ?? undefined;
    return this.#ctx.stateReader.getVersion(ns, key);
  }

  async metadata(ns: string, key: string): Promise<ReadonlyMap<string, Bytes> | undefined> {
    const o = this.#overlay.get(ns)?.get(key);
    if (o && o.metadata !== undefined) return o.metadata ?? undefined;
    if (o && o.version === null) return undefined;
    return this.#ctx.stateReader.getMetadata(ns, key);
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
    const it = this.#ctx.stateReader.rangeScan(ns, start, end)[Symbol.asyncIterator]();
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
      const current = await state.version(ns.namespace, r.key);
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
        const current = await state.version(hns, toHex(r.keyHash));
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
 * every other write needs the chaincode's policy.
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
  const keyLevel = async (ns: string, key: string): Promise<EndorsementPolicy | undefined> => {
    const vp = (await state.metadata(ns, key))?.get(VALIDATION_PARAMETER);
    if (vp === undefined) return undefined;
    try {
      return ctx.policies.keyLevelPolicy(vp);
    } catch (e) {
      throw fail(`key-level policy of ${ns}/${key} is unreadable: ${errMessage(e)}`);
    }
  };

  const namespaces = new Set(rwset.nsRwsets.map((n) => n.namespace));
  if (tx.invokedChaincode !== undefined && !namespaces.has(tx.invokedChaincode)) {
    // Read nothing, wrote nothing: the invoked chaincode still endorsed the result.
    const policy = await ctx.policies.chaincodePolicy(tx.invokedChaincode);
    if (!policy)
      throw new TxInvalid(TxValidationCode.INVALID_CHAINCODE, `chaincode ${tx.invokedChaincode} not defined`);
    if (!holds(policy)) throw fail(`endorsement policy of ${tx.invokedChaincode} not satisfied`);
  }
  for (const ns of rwset.nsRwsets) {
    const hashedWrites = ns.collectionHashedRwsets.filter(
      (c) => c.hashedRwset.hashedWrites.length > 0 || c.hashedRwset.metadataWrites.length > 0,
    );
    const writes = ns.rwset.writes.length + ns.rwset.metadataWrites.length + hashedWrites.length;
    if (writes === 0 && ns.namespace !== tx.invokedChaincode) continue;
    const ccPolicy = await ctx.policies.chaincodePolicy(ns.namespace);
    if (!ccPolicy) throw new TxInvalid(TxValidationCode.INVALID_CHAINCODE, `chaincode ${ns.namespace} not defined`);
    let needChaincodePolicy = writes === 0;
    const publicKeys = new Set([...ns.rwset.writes.map((w) => w.key), ...ns.rwset.metadataWrites.map((m) => m.key)]);
    for (const key of publicKeys) {
      const kp = await keyLevel(ns.namespace, key);
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
        const kp = await keyLevel(hns, key);
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
