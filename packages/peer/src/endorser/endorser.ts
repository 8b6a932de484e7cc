/**
 * The endorser: checks a signed proposal, simulates it with the chaincode, and answers with a
 * ProposalResponse whose payload it signs (docs/protocol.md "Endorsements").
 *
 * Checks, in order, each failing with a LoomError whose `code` names the rule:
 *   BAD_PROPOSAL        the bytes do not decode, the header is not ENDORSER_TRANSACTION, or the
 *                       header extension names another chaincode than the input
 *   CHANNEL_NOT_FOUND   this peer has not joined the channel
 *   MSP_* / SIGNATURE_* the creator is not a valid member of a channel MSP, or the signature over
 *                       `proposalBytes` does not verify
 *   ACCESS_DENIED       the creator does not satisfy the channel's `Writers` policy (Fabric's
 *                       `peer/Propose` ACL, the same for submit and evaluate)
 *   BAD_PROPOSAL_TXID   txId is not hex(sha256(nonce ‖ creator))
 *   DUPLICATE_TXID      a committed transaction already has this txId
 *   PROPOSAL_EXPIRED    the proposal's timestamp is more than the window (15 min) from the clock
 *   CHAINCODE_NOT_FOUND the chaincode is not defined on the channel
 * then the chaincode runs; CHAINCODE_TIMEOUT / CHAINCODE_CRASHED / CHAINCODE_START_FAILED come
 * from the runtime. A chaincode response with status ≥ 400 is returned unendorsed (`endorsement`
 * null, empty payload), as Fabric does; below 400 the response carries a ChaincodeAction with the
 * read-write set and is signed over `payload ‖ endorser`.
 *
 * The private read-write set is returned beside the response (never inside it). With `privateData`
 * the endorser also enforces collection access while the chaincode runs (PRIVDATA_ACCESS_DENIED:
 * memberOnlyRead/memberOnlyWrite against the proposal creator's org; PRIVDATA_NOT_A_MEMBER: a value
 * read on a peer whose org is not a member; COLLECTION_NOT_FOUND), and before signing hands the
 * private rwset to `privateData.distribute` (this peer's transient store, then dissemination to
 * `requiredPeerCount`..`maxPeerCount` member peers; PRIVDATA_DISSEMINATION_FAILED when too few
 * acknowledge). A violation fails the proposal whatever the chaincode made of the error.
 */
import {
  type Bytes,
  type ChaincodeAction,
  type ChaincodeInvocationSpec,
  type ChannelHeader,
  computeProposalHash,
  computeTxId,
  decodeChaincodeInvocationSpec,
  decodeChaincodeProposalPayload,
  decodeChannelHeader,
  decodeHeader,
  decodeProposal,
  decodeSerializedIdentity,
  decodeSignatureHeader,
  decodeSignedProposal,
  encodeChaincodeAction,
  encodeChaincodeEvent,
  encodeProposalResponse,
  encodeProposalResponsePayload,
  encodeSerializedIdentity,
  endorsementSignedBytes,
  fromUtf8,
  type HashFn,
  HeaderType,
  isLoomError,
  type Logger,
  LoomError,
  type ProposalResponse,
  type SerializedIdentity,
  type SignerIdentity,
  sha256,
  type TxPvtReadWriteSet,
  type TxReadWriteSet,
  utf8,
} from '@loom/common';
import type { ChaincodeResponse, TransactionPayload } from '@loom/common/chaincode-protocol';
import type { CollectionConfig } from '../chaincode/lifecycle/collections.js';
import type {
  CollectionOperation,
  ExecuteRequest,
  ExecuteResult,
  InvokeChaincodeHandler,
} from '../chaincode/runtime/types.js';
import { PrivateDataErrorCode } from '../privdata/transport.js';
import { type SimulationLedger, startSimulation, type TxSimulator } from '../simulation/tx-simulator.js';

export const EndorserErrorCode = {
  BAD_PROPOSAL: 'BAD_PROPOSAL',
  CHANNEL_NOT_FOUND: 'CHANNEL_NOT_FOUND',
  ACCESS_DENIED: 'ACCESS_DENIED',
  BAD_PROPOSAL_TXID: 'BAD_PROPOSAL_TXID',
  DUPLICATE_TXID: 'DUPLICATE_TXID',
  PROPOSAL_EXPIRED: 'PROPOSAL_EXPIRED',
  CHAINCODE_NOT_FOUND: 'CHAINCODE_NOT_FOUND',
  /** `initRequired` and the chaincode has not run its Init for this version yet. */
  CHAINCODE_NOT_INITIALIZED: 'CHAINCODE_NOT_INITIALIZED',
  /** An init proposal for a chaincode already initialized at this version. */
  CHAINCODE_ALREADY_INITIALIZED: 'CHAINCODE_ALREADY_INITIALIZED',
} as const;

/** A chaincode as committed on a channel (the `_lifecycle` definition). */
export interface ChaincodeDefinition {
  readonly name: string;
  readonly version: string;
  /** The installed package this peer runs for the definition. */
  readonly packageId: string;
  readonly endorsementPolicy: string;
  readonly collections?: readonly { readonly name: string }[] | undefined;
  readonly initRequired: boolean;
  /**
   * Where `_lifecycle` keeps this definition (e.g. its sequence key): when given, every proposal
   * reads it, so a transaction endorsed under an old definition fails MVCC after an upgrade.
   */
  readonly definitionKey?: { readonly namespace: string; readonly key: string } | undefined;
}

/**
 * The key marking a chaincode initialized (Fabric's `\x00` + U+10FFFF + `initialized`, in the
 * chaincode's own namespace); its value is the definition's version.
 */
export const INITIALIZED_KEY = '\u0000\u{10FFFF}initialized';

/** Chaincode definitions by channel and name (backed by `_lifecycle`). */
export interface ChaincodeRegistry {
  get(channelId: string, name: string): ChaincodeDefinition | undefined | Promise<ChaincodeDefinition | undefined>;
}

/** An identity the channel's MSPs validated, able to check its own signatures. */
export interface VerifiableIdentity extends SignerIdentity {
  verify(message: Uint8Array, signature: Uint8Array): void;
}

/** What the endorser needs of one joined channel. */
export interface EndorserChannel {
  /** The channel's MSPs (`MspManager`). */
  readonly msp: { deserialize(serialized: SerializedIdentity): VerifiableIdentity };
  /** The channel's application policies (`ChannelPolicies`); `Writers` is checked. */
  readonly policies: {
    evaluate(name: string, signers: readonly SignerIdentity[]): { satisfied: boolean; reason?: string | undefined };
  };
  readonly ledger: SimulationLedger & { isTxIdCommitted(txId: string): Promise<boolean> };
}

/** The peer's signing identity. */
export interface EndorsementSigner {
  readonly identity: SerializedIdentity;
  sign(message: Bytes): Bytes | Promise<Bytes>;
}

export interface EndorserOptions {
  readonly channels: (channelId: string) => EndorserChannel | undefined;
  readonly registry: ChaincodeRegistry;
  readonly runtime: { execute(request: ExecuteRequest): Promise<ExecuteResult> };
  readonly signer: EndorsementSigner;
  /** Milliseconds since the epoch. */
  readonly clock?: (() => number) | undefined;
  /** Allowed distance between the proposal timestamp and the clock; default 15 minutes. */
  readonly timeWindowMs?: number | undefined;
  /** Per-transaction chaincode execute timeout (else the runtime's). */
  readonly executeTimeoutMs?: number | undefined;
  readonly hash?: HashFn | undefined;
  readonly logger?: Logger | undefined;
  readonly privateData?: EndorserPrivateData | undefined;
  /**
   * Told of every endorsement this peer signs (signed bytes: `message ‖ messageTail`, the response
   * payload and the endorser), so that committing the transaction need not verify it again (the
   * peer's signature verifier, `rememberOwn`). What it throws is ignored.
   */
  readonly onEndorsementSigned?:
    | ((signed: { readonly message: Bytes; readonly messageTail: Bytes; readonly signature: Bytes }) => void)
    | undefined;
}

/** Private data collections at endorsement (privdata/). */
export interface EndorserPrivateData {
  /** This peer's org. */
  readonly mspId: string;
  /** A collection's config (implicit org collections included); undefined when not defined. */
  collection(channelId: string, namespace: string, collection: string): CollectionConfig | undefined;
  /** Stores the private rwset in the transient store and disseminates it; throws when that fails. */
  distribute(channelId: string, txId: string, pvtRwset: TxPvtReadWriteSet, height: number): Promise<void>;
}

export interface ProposalResult {
  readonly txId: string;
  readonly channelId: string;
  readonly chaincodeName: string;
  /** The response as sent: `bytes` is its encoding. */
  readonly response: ProposalResponse;
  readonly bytes: Bytes;
  /** The public read-write set (null when the chaincode failed). */
  readonly rwset: TxReadWriteSet | null;
  /** For private data dissemination; null when the transaction touched no private data. */
  readonly privateRwset: TxPvtReadWriteSet | null;
  readonly privateRwsetBytes: Bytes | null;
  /** Ledger height the simulation read. */
  readonly simulationHeight: number;
}

export interface Endorser {
  /** Checks, simulates and endorses a SignedProposal; throws LoomError for a rejected proposal. */
  processProposal(signedProposalBytes: Bytes): Promise<ProposalResult>;
  /** The same path, for queries (`evaluate`): the response is signed as well, which is cheap. */
  evaluate(signedProposalBytes: Bytes): Promise<ProposalResult>;
}

const EMPTY = new Uint8Array(0);
const DEFAULT_WINDOW_MS = 15 * 60_000;

interface CheckedProposal {
  channelHeader: ChannelHeader;
  headerBytes: Bytes;
  inputBytes: Bytes;
  spec: ChaincodeInvocationSpec;
  transientMap: Map<string, Bytes>;
  creator: SerializedIdentity;
  channel: EndorserChannel;
  definition: ChaincodeDefinition;
}

function bad(message: string, cause?: unknown): LoomError {
  return new LoomError(EndorserErrorCode.BAD_PROPOSAL, message, { httpStatus: 400, cause });
}

function decodeOrBad<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw bad(`${what}: ${e instanceof Error ? e.message : String(e)}`, e);
  }
}

const toTimestamp = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 });

class ProposalEndorser implements Endorser {
  readonly #opts: EndorserOptions;
  readonly #hash: HashFn;
  readonly #endorser: Bytes;

  constructor(opts: EndorserOptions) {
    this.#opts = opts;
    this.#hash = opts.hash ?? sha256;
    this.#endorser = encodeSerializedIdentity(opts.signer.identity);
  }

  evaluate(signedProposalBytes: Bytes): Promise<ProposalResult> {
    return this.processProposal(signedProposalBytes);
  }

  async processProposal(signedProposalBytes: Bytes): Promise<ProposalResult> {
    const p = await this.#check(signedProposalBytes);
    const { channelHeader, definition, channel } = p;
    const txId = channelHeader.txId;
    const sim = await startSimulation(channel.ledger, { txId, channelId: channelHeader.channelId });
    try {
      const input: TransactionPayload = {
        args: p.spec.args,
        transientMap: p.transientMap,
        signedProposal: signedProposalBytes,
        creator: { mspId: p.creator.mspId, idBytes: p.creator.idBytes },
        txTimestamp: toTimestamp(channelHeader.timestamp),
      };
      if (definition.definitionKey !== undefined) {
        // Read the definition through the simulation, so an upgrade committed before this
        // transaction invalidates it (MVCC), as Fabric's endorsement-info lookup does.
        await sim.getState(definition.definitionKey.namespace, definition.definitionKey.key);
      }
      const isInit = await checkInit(definition, p.spec.isInit, sim, txId);
      const violations: LoomError[] = [];
      const outcome = await this.#run(
        definition,
        channelHeader.channelId,
        txId,
        isInit,
        input,
        sim,
        [definition.name],
        violations,
      );
      if (violations[0] !== undefined) throw violations[0];
      const now = this.#now();
      if (outcome.response.status >= 400) {
        const response: ProposalResponse = {
          version: 1,
          timestamp: now,
          response: outcome.response,
          payload: EMPTY,
          endorsement: null,
        };
        return {
          txId,
          channelId: channelHeader.channelId,
          chaincodeName: definition.name,
          response,
          bytes: encodeProposalResponse(response),
          rwset: null,
          privateRwset: null,
          privateRwsetBytes: null,
          simulationHeight: sim.height,
        };
      }
      const results = await sim.results();
      if (results.pvtRwset !== null && this.#opts.privateData !== undefined) {
        // Leave the commit gate first: dissemination waits on other peers.
        await sim.done();
        await this.#opts.privateData.distribute(channelHeader.channelId, txId, results.pvtRwset, sim.height);
      }
      const action: ChaincodeAction = {
        results: results.rwsetBytes,
        events:
          outcome.event === null
            ? EMPTY
            : encodeChaincodeEvent({
                chaincodeId: definition.name,
                txId,
                eventName: outcome.event.eventName,
                payload: outcome.event.payload,
              }),
        response: outcome.response,
        chaincodeName: definition.name,
        chaincodeVersion: definition.version,
      };
      const payload = encodeProposalResponsePayload({
        proposalHash: computeProposalHash(p.headerBytes, p.inputBytes, this.#hash),
        extension: encodeChaincodeAction(action),
      });
      const signature = await this.#opts.signer.sign(endorsementSignedBytes(payload, this.#endorser));
      try {
        this.#opts.onEndorsementSigned?.({ message: payload, messageTail: this.#endorser, signature });
      } catch {
        // an optimization only: the commit verifies the endorsement instead
      }
      const response: ProposalResponse = {
        version: 1,
        timestamp: now,
        response: outcome.response,
        payload,
        endorsement: { endorser: this.#endorser, signature },
      };
      return {
        txId,
        channelId: channelHeader.channelId,
        chaincodeName: definition.name,
        response,
        bytes: encodeProposalResponse(response),
        rwset: results.rwset,
        privateRwset: results.pvtRwset,
        privateRwsetBytes: results.pvtRwsetBytes,
        simulationHeight: sim.height,
      };
    } finally {
      await sim.done();
    }
  }

  /** Fabric's collection access rules for the chaincode `namespace` run for a creator of `creatorMspId`. */
  #collectionAccess(
    channelId: string,
    namespace: string,
    creatorMspId: string,
    violations: LoomError[],
  ): ((collection: string, op: CollectionOperation) => void) | undefined {
    const pd = this.#opts.privateData;
    if (pd === undefined) return undefined;
    return (collection, op) => {
      const details = { channelId, namespace, collection, mspId: creatorMspId };
      const fail = (code: string, message: string) => {
        const e = accessError(code, message, details);
        violations.push(e);
        throw e;
      };
      const c = pd.collection(channelId, namespace, collection);
      if (c === undefined) {
        return fail('COLLECTION_NOT_FOUND', `collection ${collection} could not be found for chaincode ${namespace}`);
      }
      const creatorIsMember = c.memberOrgs.includes(creatorMspId);
      if (op === 'write' && c.memberOnlyWrite && !creatorIsMember) {
        return fail(
          PrivateDataErrorCode.ACCESS_DENIED,
          `tx creator of ${creatorMspId} does not have write access permission on privatedata in chaincodeName:${namespace} collectionName: ${collection} (memberOnlyWrite)`,
        );
      }
      if (op === 'read' && c.memberOnlyRead && !creatorIsMember) {
        return fail(
          PrivateDataErrorCode.ACCESS_DENIED,
          `tx creator of ${creatorMspId} does not have read access permission on privatedata in chaincodeName:${namespace} collectionName: ${collection} (memberOnlyRead)`,
        );
      }
      if (op === 'read' && !c.memberOrgs.includes(pd.mspId)) {
        return fail(
          PrivateDataErrorCode.NOT_A_MEMBER,
          `this peer's org ${pd.mspId} is not a member of collection ${collection} of ${namespace}: it holds only hashes (use getPrivateDataHash)`,
        );
      }
    };
  }

  #now(): number {
    return this.#opts.clock?.() ?? Date.now();
  }

  async #check(bytes: Bytes): Promise<CheckedProposal> {
    const signed = decodeOrBad('SignedProposal', () => decodeSignedProposal(bytes));
    const proposal = decodeOrBad('Proposal', () => decodeProposal(signed.proposalBytes));
    const header = decodeOrBad('Header', () => decodeHeader(proposal.header));
    const channelHeader = decodeOrBad('ChannelHeader', () => decodeChannelHeader(header.channelHeader));
    const signatureHeader = decodeOrBad('SignatureHeader', () => decodeSignatureHeader(header.signatureHeader));
    if (channelHeader.type !== HeaderType.ENDORSER_TRANSACTION) {
      throw bad(`header type ${channelHeader.type} is not ENDORSER_TRANSACTION`);
    }
    const payload = decodeOrBad('ChaincodeProposalPayload', () => decodeChaincodeProposalPayload(proposal.payload));
    const spec = decodeOrBad('ChaincodeInvocationSpec', () => decodeChaincodeInvocationSpec(payload.input));
    const extension = decodeOrBad('ChannelHeader.extension', () => fromUtf8(channelHeader.extension));
    if (extension !== spec.chaincodeName) {
      throw bad(`header names chaincode ${JSON.stringify(extension)} but the input calls ${spec.chaincodeName}`);
    }
    if (spec.args.length === 0) throw bad('the invocation has no function name (args is empty)');

    const channelId = channelHeader.channelId;
    const channel = this.#opts.channels(channelId);
    if (channel === undefined) {
      throw new LoomError(EndorserErrorCode.CHANNEL_NOT_FOUND, `channel ${JSON.stringify(channelId)} not found`, {
        httpStatus: 404,
        details: { channelId },
      });
    }

    const creator = decodeOrBad('SignatureHeader.creator', () => decodeSerializedIdentity(signatureHeader.creator));
    const identity = channel.msp.deserialize(creator);
    try {
      identity.verify(signed.proposalBytes, signed.signature);
    } catch (e) {
      const code = isLoomError(e) ? e.code : 'SIGNATURE_INVALID';
      throw new LoomError(code, `proposal signature does not verify: ${(e as Error).message}`, {
        httpStatus: 403,
        cause: e,
      });
    }
    const writers = channel.policies.evaluate('Writers', [identity]);
    if (!writers.satisfied) {
      throw new LoomError(
        EndorserErrorCode.ACCESS_DENIED,
        `access denied: channel [${channelId}] creator org [${creator.mspId}] does not satisfy Writers${writers.reason ? `: ${writers.reason}` : ''}`,
        { httpStatus: 403, details: { channelId, mspId: creator.mspId } },
      );
    }

    const txId = channelHeader.txId;
    if (txId !== computeTxId(signatureHeader.nonce, signatureHeader.creator, this.#hash)) {
      throw new LoomError(EndorserErrorCode.BAD_PROPOSAL_TXID, `txId ${txId} is not sha256(nonce ‖ creator)`, {
        httpStatus: 400,
        details: { txId },
      });
    }
    if (await channel.ledger.isTxIdCommitted(txId)) {
      throw new LoomError(EndorserErrorCode.DUPLICATE_TXID, `transaction ${txId} is already committed`, {
        httpStatus: 409,
        details: { txId },
      });
    }
    const now = this.#now();
    const window = this.#opts.timeWindowMs ?? DEFAULT_WINDOW_MS;
    if (Math.abs(now - channelHeader.timestamp) > window) {
      throw new LoomError(
        EndorserErrorCode.PROPOSAL_EXPIRED,
        `proposal timestamp ${new Date(channelHeader.timestamp).toISOString()} is more than ${window / 60_000} min from the peer's time`,
        { httpStatus: 400, details: { txId, timestamp: channelHeader.timestamp, now } },
      );
    }

    const definition = await this.#opts.registry.get(channelId, spec.chaincodeName);
    if (definition === undefined) {
      throw new LoomError(
        EndorserErrorCode.CHAINCODE_NOT_FOUND,
        `chaincode ${spec.chaincodeName} is not defined on channel ${channelId}`,
        { httpStatus: 404, details: { channelId, chaincodeName: spec.chaincodeName } },
      );
    }
    return {
      channelHeader,
      headerBytes: proposal.header,
      inputBytes: payload.input,
      spec,
      transientMap: payload.transientMap,
      creator,
      channel,
      definition,
    };
  }

  /** Runs `definition` in `sim`; chaincode-to-chaincode calls on this channel share the simulation. */
  #run(
    definition: ChaincodeDefinition,
    channelId: string,
    txId: string,
    isInit: boolean,
    input: TransactionPayload,
    sim: TxSimulator,
    stack: readonly string[],
    violations: LoomError[] = [],
  ): Promise<ExecuteResult> {
    const invokeChaincode: InvokeChaincodeHandler = async (target) => {
      const fail = (message: string): ChaincodeResponse => ({ status: 500, message, payload: EMPTY });
      const calleeChannel = target.channel ?? channelId;
      if (calleeChannel === channelId && stack.includes(target.chaincodeName)) {
        return fail(`chaincode ${target.chaincodeName} is already running in this transaction (recursive invocation)`);
      }
      const callee = await this.#opts.registry.get(calleeChannel, target.chaincodeName);
      if (callee === undefined) {
        return fail(`chaincode ${target.chaincodeName} is not defined on channel ${calleeChannel}`);
      }
      const calleeInput: TransactionPayload = { ...input, args: target.args };
      if (calleeChannel === channelId) {
        const r = await this.#run(
          callee,
          channelId,
          txId,
          false,
          calleeInput,
          sim,
          [...stack, callee.name],
          violations,
        );
        return r.response;
      }
      // Another channel: the callee only reads there; its read-write set is discarded (Fabric).
      const other = this.#opts.channels(calleeChannel);
      if (other === undefined) return fail(`channel ${calleeChannel} not found`);
      const otherSim = await startSimulation(other.ledger, { txId, channelId: calleeChannel });
      try {
        const r = await this.#run(callee, calleeChannel, txId, false, calleeInput, otherSim, [callee.name]);
        return r.response;
      } finally {
        await otherSim.done();
      }
    };
    const request: ExecuteRequest = {
      packageId: definition.packageId,
      chaincodeName: definition.name,
      channelId,
      txId,
      isInit,
      input,
      simulator: sim,
      collections:
        definition.collections === undefined ? undefined : new Set(definition.collections.map((c) => c.name)),
      collectionAccess: this.#collectionAccess(channelId, definition.name, input.creator.mspId, violations),
      invokeChaincode,
      timeoutMs: this.#opts.executeTimeoutMs,
    };
    return this.#opts.runtime.execute(request);
  }
}

/**
 * Fabric's init rule: without `initRequired` the `isInit` flag is ignored (Invoke runs); with it,
 * the first transaction must be an init (which marks the chaincode initialized in the same rwset)
 * and no later one may be.
 */
async function checkInit(def: ChaincodeDefinition, isInit: boolean, sim: TxSimulator, txId: string): Promise<boolean> {
  if (!def.initRequired) return false;
  const marker = await sim.getState(def.name, INITIALIZED_KEY);
  const initialized = marker !== undefined && fromUtf8(marker) === def.version;
  if (isInit) {
    if (initialized) {
      throw new LoomError(
        EndorserErrorCode.CHAINCODE_ALREADY_INITIALIZED,
        `chaincode ${def.name} is already initialized but the proposal is an init`,
        { httpStatus: 400, details: { txId, chaincodeName: def.name } },
      );
    }
    sim.setState(def.name, INITIALIZED_KEY, utf8(def.version));
    return true;
  }
  if (!initialized) {
    throw new LoomError(
      EndorserErrorCode.CHAINCODE_NOT_INITIALIZED,
      `chaincode ${def.name} has not been initialized for this version, must call as init first`,
      { httpStatus: 400, details: { txId, chaincodeName: def.name } },
    );
  }
  return false;
}

function accessError(code: string, message: string, details: Record<string, unknown>): LoomError {
  return new LoomError(code, message, { httpStatus: code === 'COLLECTION_NOT_FOUND' ? 404 : 403, details });
}

export function createEndorser(opts: EndorserOptions): Endorser {
  return new ProposalEndorser(opts);
}
