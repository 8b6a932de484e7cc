/**
 * `connect()` and the objects it leads to, shaped like @hyperledger/fabric-gateway: Gateway →
 * Network (a channel) → Contract (a chaincode). Portable: all HTTP goes through a
 * `GatewayTransport`, by default node:https loaded on first use (transport-node.ts).
 */
import {
  type BlockEventsRequest,
  blockEventsRequestCodec,
  type ChaincodeEventFrame,
  type ChaincodeEventsRequest,
  chaincodeEventsRequestCodec,
  commitStatusRequestCodec,
  type FrameStream,
  type GatewayTransport,
  gatewayRoutes,
  keyProofRequestCodec,
  openStreamRoute,
  publicKeyFromCertificate,
  type SignedLedgerDigest,
  txProofRequestCodec,
} from '@loom/common/gateway/index';
import {
  encodeLedgerDigest,
  type KeyProof,
  type TxProof,
  verifyKeyProof,
  verifyTxProof,
} from '@loom/common/ledger-proofs';
import { buildProposal, decodeBlock, decodeBlockHeader, NONCE_LENGTH, verify } from '@loom/common/portable';
import { type CallTimeouts, ClientContext, DEFAULT_TIMEOUTS, type TlsOptions } from './context.js';
import { GatewayError } from './errors.js';
import type { BlockEvent, ChaincodeEvent, CloseableAsyncIterable, EventsOptions } from './events.js';
import { type Hash, sha256 } from './hash.js';
import type { Identity } from './identity.js';
import type { Signer } from './signers.js';
import {
  assertCommitted,
  type Commit,
  CommitImpl,
  type Proposal,
  ProposalImpl,
  proposalParts,
  type SubmittedTransaction,
  type Transaction,
  TransactionImpl,
  transactionParts,
} from './transactions.js';

export interface ConnectOptions {
  /** The peer gateway's base URL, `https://host:port`. */
  readonly endpoint: string;
  readonly identity: Identity;
  /** Signs digests; omit to sign offline (getBytes()/getDigest() + gateway.newSigned…()). */
  readonly signer?: Signer;
  /** The digest function a signer receives; default SHA-256. */
  readonly hash?: Hash;
  /** TLS for the default Node transport. */
  readonly tls?: TlsOptions;
  /** An HTTP transport of your own (a fetch-based one in a browser); takes precedence over `tls`. */
  readonly transport?: GatewayTransport;
  readonly evaluateOptions?: CallTimeouts;
  readonly endorseOptions?: CallTimeouts;
  readonly submitOptions?: CallTimeouts;
  /** How long a commit-status call may wait for the commit. */
  readonly commitStatusOptions?: CallTimeouts;
  /** Milliseconds since the epoch, for proposal and request timestamps. */
  readonly clock?: () => number;
}

export interface ProposalOptions {
  readonly arguments?: readonly (string | Uint8Array)[];
  /** Private inputs: reach the endorsers, never the ledger. */
  readonly transientData?: Readonly<Record<string, string | Uint8Array>>;
  /** Organizations that must endorse (evaluate: whose peers may answer); default: the gateway plans. */
  readonly endorsingOrganizations?: readonly string[];
}

export interface Gateway {
  getIdentity(): Identity;
  getNetwork(channelName: string): Network;
  /** A proposal signed elsewhere: `bytes` from `proposal.getBytes()`, `signature` over them (DER). */
  newSignedProposal(bytes: Uint8Array, signature: Uint8Array): Proposal;
  newSignedTransaction(bytes: Uint8Array, signature: Uint8Array): Transaction;
  newSignedCommit(bytes: Uint8Array, signature: Uint8Array): Commit;
  close(): void;
}

export interface Network {
  getName(): string;
  getContract(chaincodeName: string, contractName?: string): Contract;
  getChaincodeEvents(chaincodeName: string, options?: EventsOptions): Promise<CloseableAsyncIterable<ChaincodeEvent>>;
  getBlockEvents(options?: EventsOptions): Promise<CloseableAsyncIterable<BlockEvent>>;
  /** The gateway peer's signed digest of this channel's ledger. */
  getLedgerDigest(): Promise<SignedLedgerDigest>;
  getTransactionProof(transactionId: string): Promise<TxProof>;
  getKeyProof(namespace: string, key: string): Promise<KeyProof>;
  /**
   * True when `digest` is signed by the holder of `peerCert` (a peer you trust) and `proof` shows
   * its transaction (or key version) in the ledger the digest describes. Trusts nothing else the
   * gateway said.
   */
  verifyProof(proof: TxProof | KeyProof, digest: SignedLedgerDigest, peerCert: string | Uint8Array): boolean;
}

export interface Contract {
  getChaincodeName(): string;
  getContractName(): string | undefined;
  evaluateTransaction(name: string, ...args: (string | Uint8Array)[]): Promise<Uint8Array>;
  submitTransaction(name: string, ...args: (string | Uint8Array)[]): Promise<Uint8Array>;
  evaluate(name: string, options?: ProposalOptions): Promise<Uint8Array>;
  /** Endorse, submit and wait for the commit; throws CommitError unless it committed VALID. */
  submit(name: string, options?: ProposalOptions): Promise<Uint8Array>;
  /** Endorse and submit; answers once the orderer accepted it, without waiting for the commit. */
  submitAsync(name: string, options?: ProposalOptions): Promise<SubmittedTransaction>;
  newProposal(name: string, options?: ProposalOptions): Proposal;
}

const utf8 = (s: string) => new TextEncoder().encode(s);

function randomNonce(): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(NONCE_LENGTH));
}

class ContractImpl implements Contract {
  readonly #ctx: ClientContext;
  readonly #channel: string;
  readonly #chaincode: string;
  readonly #contractName: string | undefined;

  constructor(ctx: ClientContext, channel: string, chaincode: string, contractName: string | undefined) {
    this.#ctx = ctx;
    this.#channel = channel;
    this.#chaincode = chaincode;
    this.#contractName = contractName;
  }

  getChaincodeName(): string {
    return this.#chaincode;
  }
  getContractName(): string | undefined {
    return this.#contractName;
  }
  evaluateTransaction(name: string, ...args: (string | Uint8Array)[]): Promise<Uint8Array> {
    return this.evaluate(name, { arguments: args });
  }
  submitTransaction(name: string, ...args: (string | Uint8Array)[]): Promise<Uint8Array> {
    return this.submit(name, { arguments: args });
  }
  evaluate(name: string, options: ProposalOptions = {}): Promise<Uint8Array> {
    return this.newProposal(name, options).evaluate();
  }
  async submit(name: string, options: ProposalOptions = {}): Promise<Uint8Array> {
    const submitted = await this.submitAsync(name, options);
    assertCommitted(await submitted.getStatus());
    return submitted.getResult();
  }
  async submitAsync(name: string, options: ProposalOptions = {}): Promise<SubmittedTransaction> {
    const transaction = await this.newProposal(name, options).endorse();
    return transaction.submit();
  }

  newProposal(name: string, options: ProposalOptions = {}): Proposal {
    // Fabric's convention for multi-contract chaincode: `contract:function`.
    const fn = this.#contractName ? `${this.#contractName}:${name}` : name;
    const transient: Record<string, Uint8Array> = {};
    for (const [k, v] of Object.entries(options.transientData ?? {}))
      transient[k] = typeof v === 'string' ? utf8(v) : v;
    const built = buildProposal({
      channelId: this.#channel,
      chaincodeName: this.#chaincode,
      args: [fn, ...(options.arguments ?? [])],
      transient,
      creator: { mspId: this.#ctx.identity.mspId, idBytes: this.#ctx.identity.credentials },
      nonce: randomNonce(),
      timestamp: this.#ctx.clock(),
    });
    return new ProposalImpl(this.#ctx, {
      channel: this.#channel,
      txId: built.txId,
      proposalBytes: built.proposalBytes,
      organizations: options.endorsingOrganizations ?? [],
    });
  }
}

/** Wraps a frame stream as the closeable iterable the SDK hands out, mapping and filtering frames. */
function closeable<F, T>(stream: FrameStream<F>, map: (f: F) => T | undefined): CloseableAsyncIterable<T> {
  async function* items(): AsyncGenerator<T> {
    for await (const f of stream) {
      const t = map(f);
      if (t !== undefined) yield t;
    }
  }
  const it = items();
  return { [Symbol.asyncIterator]: () => it, close: () => stream.close() };
}

class NetworkImpl implements Network {
  readonly #ctx: ClientContext;
  readonly #name: string;

  constructor(ctx: ClientContext, name: string) {
    this.#ctx = ctx;
    this.#name = name;
  }

  getName(): string {
    return this.#name;
  }
  getContract(chaincodeName: string, contractName?: string): Contract {
    return new ContractImpl(this.#ctx, this.#name, chaincodeName, contractName);
  }

  /** Where a listener starts, and which transaction of that block it already processed. */
  #start(options: EventsOptions): { startBlock: number | null; skipThrough: string | undefined } {
    const cpBlock = options.checkpoint?.getBlockNumber();
    if (cpBlock !== undefined) return { startBlock: cpBlock, skipThrough: options.checkpoint?.getTransactionId() };
    return { startBlock: options.startBlock ?? null, skipThrough: undefined };
  }

  async getChaincodeEvents(
    chaincodeName: string,
    options: EventsOptions = {},
  ): Promise<CloseableAsyncIterable<ChaincodeEvent>> {
    const { startBlock, skipThrough } = this.#start(options);
    const request: ChaincodeEventsRequest = {
      channel: this.#name,
      creator: this.#ctx.creator,
      timestamp: this.#ctx.clock(),
      chaincode: chaincodeName,
      startBlock,
    };
    let stream: FrameStream<ChaincodeEventFrame>;
    try {
      const signed = await this.#ctx.signRequest(chaincodeEventsRequestCodec, request);
      stream = await openStreamRoute(
        await this.#ctx.transport(),
        this.#ctx.endpoint,
        gatewayRoutes.chaincodeEvents,
        signed,
      );
    } catch (e) {
      throw toGatewayError(e);
    }
    // Resuming inside a block: events up to and including the checkpointed transaction were handled.
    let skipping = skipThrough !== undefined;
    return closeable(stream, (f) => {
      if (skipping) {
        if (f.blockNumber === startBlock) {
          if (f.txId === skipThrough) skipping = false;
          return undefined;
        }
        skipping = false;
      }
      return {
        blockNumber: f.blockNumber,
        transactionId: f.txId,
        chaincodeName: f.chaincodeId,
        eventName: f.eventName,
        payload: f.payload,
      };
    });
  }

  async getBlockEvents(options: EventsOptions = {}): Promise<CloseableAsyncIterable<BlockEvent>> {
    const { startBlock } = this.#start(options);
    const request: BlockEventsRequest = {
      channel: this.#name,
      creator: this.#ctx.creator,
      timestamp: this.#ctx.clock(),
      startBlock,
    };
    let stream: FrameStream<Uint8Array>;
    try {
      const signed = await this.#ctx.signRequest(blockEventsRequestCodec, request);
      stream = await openStreamRoute(
        await this.#ctx.transport(),
        this.#ctx.endpoint,
        gatewayRoutes.blockEvents,
        signed,
      );
    } catch (e) {
      throw toGatewayError(e);
    }
    return closeable(stream, (bytes) => {
      const block = decodeBlock(bytes);
      return { blockNumber: decodeBlockHeader(block.header).number, block };
    });
  }

  async getLedgerDigest(): Promise<SignedLedgerDigest> {
    try {
      return await this.#ctx.call(
        gatewayRoutes.digest,
        { channel: this.#name },
        { timeoutMs: this.#ctx.timeouts.evaluate },
      );
    } catch (e) {
      throw toGatewayError(e);
    }
  }

  async getTransactionProof(transactionId: string): Promise<TxProof> {
    try {
      const signed = await this.#ctx.signRequest(txProofRequestCodec, {
        channel: this.#name,
        creator: this.#ctx.creator,
        timestamp: this.#ctx.clock(),
        txId: transactionId,
      });
      return await this.#ctx.call(gatewayRoutes.txProof, signed, { timeoutMs: this.#ctx.timeouts.evaluate });
    } catch (e) {
      throw toGatewayError(e, transactionId);
    }
  }

  async getKeyProof(namespace: string, key: string): Promise<KeyProof> {
    try {
      const signed = await this.#ctx.signRequest(keyProofRequestCodec, {
        channel: this.#name,
        creator: this.#ctx.creator,
        timestamp: this.#ctx.clock(),
        namespace,
        key,
      });
      return await this.#ctx.call(gatewayRoutes.keyProof, signed, { timeoutMs: this.#ctx.timeouts.evaluate });
    } catch (e) {
      throw toGatewayError(e);
    }
  }

  verifyProof(proof: TxProof | KeyProof, digest: SignedLedgerDigest, peerCert: string | Uint8Array): boolean {
    if (digest.digest.channelId !== this.#name) return false;
    try {
      const key = publicKeyFromCertificate(peerCert);
      if (!verify(key, encodeLedgerDigest(digest.digest), digest.signature)) return false;
    } catch {
      return false;
    }
    const hash = this.#ctx.hash;
    return 'tx' in proof ? verifyKeyProof(proof, digest.digest, hash) : verifyTxProof(proof, digest.digest, hash);
  }
}

function toGatewayError(e: unknown, transactionId?: string): GatewayError {
  if (e instanceof GatewayError) return e;
  const code = (e as { code?: unknown }).code;
  return new GatewayError({
    code: typeof code === 'string' ? code : 'UNAVAILABLE',
    message: e instanceof Error ? e.message : String(e),
    cause: e,
    ...(transactionId !== undefined ? { transactionId } : {}),
  });
}

class GatewayImpl implements Gateway {
  readonly #ctx: ClientContext;

  constructor(ctx: ClientContext) {
    this.#ctx = ctx;
  }

  getIdentity(): Identity {
    return this.#ctx.identity;
  }
  getNetwork(channelName: string): Network {
    return new NetworkImpl(this.#ctx, channelName);
  }
  newSignedProposal(bytes: Uint8Array, signature: Uint8Array): Proposal {
    return new ProposalImpl(this.#ctx, proposalParts(bytes, signature));
  }
  newSignedTransaction(bytes: Uint8Array, signature: Uint8Array): Transaction {
    return new TransactionImpl(this.#ctx, transactionParts(bytes, signature));
  }
  newSignedCommit(bytes: Uint8Array, signature: Uint8Array): Commit {
    return new CommitImpl(this.#ctx, commitStatusRequestCodec.decode(bytes), signature);
  }
  close(): void {
    this.#ctx.close();
  }
}

/** Connects to a peer gateway. No network traffic happens until the first call. */
export function connect(options: ConnectOptions): Gateway {
  if (!/^https?:\/\//.test(options.endpoint)) {
    throw new GatewayError({
      code: 'GATEWAY_BAD_ENDPOINT',
      message: `endpoint must be a URL: ${options.endpoint}`,
      httpStatus: 400,
    });
  }
  const ctx = new ClientContext({
    endpoint: options.endpoint,
    identity: options.identity,
    signer: options.signer,
    hash: options.hash ?? sha256,
    clock: options.clock ?? Date.now,
    transport: options.transport,
    tls: options.tls,
    timeouts: {
      evaluate: options.evaluateOptions?.timeoutMs ?? DEFAULT_TIMEOUTS.evaluate,
      endorse: options.endorseOptions?.timeoutMs ?? DEFAULT_TIMEOUTS.endorse,
      submit: options.submitOptions?.timeoutMs ?? DEFAULT_TIMEOUTS.submit,
      commitStatus: options.commitStatusOptions?.timeoutMs ?? DEFAULT_TIMEOUTS.commitStatus,
    },
  });
  return new GatewayImpl(ctx);
}
