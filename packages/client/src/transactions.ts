/**
 * The steps of a transaction, each of which can be signed elsewhere (offline signing): a Proposal is
 * endorsed into a Transaction, which is submitted into a SubmittedTransaction, whose Commit tells the
 * outcome. `getBytes()` are the exact bytes the protocol signs; `getDigest()` is their hash, which is
 * what a `Signer` receives. Portable.
 */
import { type CommitStatusRequest, commitStatusRequestCodec, gatewayRoutes } from '@loom/common/gateway/index';
import {
  type Bytes,
  decodeChaincodeAction,
  decodeChannelHeader,
  decodeEndorserTransaction,
  decodeHeader,
  decodePayload,
  decodeProposal,
  decodeProposalResponsePayload,
  encodeEnvelope,
  encodeSignedProposal,
  toLowSDer,
} from '@loom/common/portable';
import type { CallTimeouts, ClientContext } from './context.js';
import {
  CommitError,
  CommitStatusError,
  EndorseError,
  EvaluateError,
  SubmitError,
  wrapError as wrap,
} from './errors.js';

/** The outcome of a committed transaction. */
export interface Status {
  readonly transactionId: string;
  readonly blockNumber: number;
  /** Validation code number (Fabric's TxValidationCode; 0 is VALID). */
  readonly code: number;
  /** Validation code name, e.g. `VALID`, `MVCC_READ_CONFLICT`. */
  readonly codeName: string;
  readonly successful: boolean;
}

export interface Proposal {
  /** The encoded Proposal: the bytes the creator signs. */
  getBytes(): Uint8Array;
  getDigest(): Uint8Array;
  getTransactionId(): string;
  /** Runs the proposal on one peer; answers the chaincode's result. Nothing is ordered. */
  evaluate(options?: CallTimeouts): Promise<Uint8Array>;
  /** Collects endorsements; answers the Transaction to sign and submit. */
  endorse(options?: CallTimeouts): Promise<Transaction>;
}

export interface Transaction {
  /** The transaction Payload: the bytes the creator signs to make the Envelope. */
  getBytes(): Uint8Array;
  getDigest(): Uint8Array;
  getTransactionId(): string;
  /** The result the endorsers signed. */
  getResult(): Uint8Array;
  submit(options?: CallTimeouts): Promise<SubmittedTransaction>;
}

export interface Commit {
  /** The commit-status request: the bytes the creator signs. */
  getBytes(): Uint8Array;
  getDigest(): Uint8Array;
  getTransactionId(): string;
  /** Waits until the transaction is committed (bounded by the commit-status timeout). */
  getStatus(options?: CallTimeouts): Promise<Status>;
}

export interface SubmittedTransaction extends Commit {
  getResult(): Uint8Array;
}

export interface ProposalParts {
  readonly channel: string;
  readonly txId: string;
  readonly proposalBytes: Bytes;
  readonly organizations: readonly string[];
  readonly signature?: Bytes;
}

export class ProposalImpl implements Proposal {
  readonly #ctx: ClientContext;
  readonly #p: ProposalParts;

  constructor(ctx: ClientContext, parts: ProposalParts) {
    this.#ctx = ctx;
    this.#p = parts;
  }

  getBytes(): Uint8Array {
    return this.#p.proposalBytes;
  }
  getDigest(): Uint8Array {
    return this.#ctx.hash(this.#p.proposalBytes);
  }
  getTransactionId(): string {
    return this.#p.txId;
  }

  async #signed(): Promise<Bytes> {
    const signature = this.#p.signature ?? (await this.#ctx.signBytes(this.#p.proposalBytes));
    return encodeSignedProposal({ proposalBytes: this.#p.proposalBytes, signature });
  }

  async evaluate(options: CallTimeouts = {}): Promise<Uint8Array> {
    try {
      const signedProposal = await this.#signed();
      const res = await this.#ctx.call(
        gatewayRoutes.evaluate,
        { signedProposal, organizations: this.#p.organizations },
        { timeoutMs: options.timeoutMs ?? this.#ctx.timeouts.evaluate },
      );
      return res.payload;
    } catch (e) {
      throw wrap(EvaluateError, this.#p.txId, e);
    }
  }

  async endorse(options: CallTimeouts = {}): Promise<Transaction> {
    let res: Awaited<ReturnType<typeof this.endorseRaw>>;
    try {
      res = await this.endorseRaw(options);
    } catch (e) {
      throw wrap(EndorseError, this.#p.txId, e);
    }
    return new TransactionImpl(this.#ctx, {
      channel: this.#p.channel,
      txId: res.txId,
      bytes: res.preparedTransaction,
      result: res.result.payload,
    });
  }

  private async endorseRaw(options: CallTimeouts) {
    const signedProposal = await this.#signed();
    return this.#ctx.call(
      gatewayRoutes.endorse,
      { signedProposal, organizations: this.#p.organizations },
      { timeoutMs: options.timeoutMs ?? this.#ctx.timeouts.endorse },
    );
  }
}

/** Reads channel and txId from an encoded Proposal (for `gateway.newSignedProposal`). */
export function proposalParts(bytes: Bytes, signature: Bytes): ProposalParts {
  const ch = decodeChannelHeader(decodeHeader(decodeProposal(bytes).header).channelHeader);
  return {
    channel: ch.channelId,
    txId: ch.txId,
    proposalBytes: bytes,
    organizations: [],
    signature: toLowSDer(signature),
  };
}

export interface TransactionParts {
  readonly channel: string;
  readonly txId: string;
  readonly bytes: Bytes;
  readonly result: Bytes;
  readonly signature?: Bytes;
}

/** Reads channel, txId and the endorsed result from transaction Payload bytes. */
export function transactionParts(bytes: Bytes, signature: Bytes): TransactionParts {
  const payload = decodePayload(bytes);
  const ch = decodeChannelHeader(decodeHeader(payload.header).channelHeader);
  const etx = decodeEndorserTransaction(payload.data);
  const action = decodeChaincodeAction(decodeProposalResponsePayload(etx.proposalResponsePayload).extension);
  return {
    channel: ch.channelId,
    txId: ch.txId,
    bytes,
    result: action.response.payload,
    signature: toLowSDer(signature),
  };
}

export class TransactionImpl implements Transaction {
  readonly #ctx: ClientContext;
  readonly #t: TransactionParts;

  constructor(ctx: ClientContext, parts: TransactionParts) {
    this.#ctx = ctx;
    this.#t = parts;
  }

  getBytes(): Uint8Array {
    return this.#t.bytes;
  }
  getDigest(): Uint8Array {
    return this.#ctx.hash(this.#t.bytes);
  }
  getTransactionId(): string {
    return this.#t.txId;
  }
  getResult(): Uint8Array {
    return this.#t.result;
  }

  async submit(options: CallTimeouts = {}): Promise<SubmittedTransaction> {
    try {
      const signature = this.#t.signature ?? (await this.#ctx.signBytes(this.#t.bytes));
      await this.#ctx.call(gatewayRoutes.submit, encodeEnvelope({ payload: this.#t.bytes, signature }), {
        timeoutMs: options.timeoutMs ?? this.#ctx.timeouts.submit,
      });
    } catch (e) {
      throw wrap(SubmitError, this.#t.txId, e);
    }
    const request: CommitStatusRequest = {
      channel: this.#t.channel,
      creator: this.#ctx.creator,
      timestamp: this.#ctx.clock(),
      txId: this.#t.txId,
      timeoutMs: this.#ctx.timeouts.commitStatus,
    };
    return new SubmittedTransactionImpl(this.#ctx, request, undefined, this.#t.result);
  }
}

export class CommitImpl implements Commit {
  readonly #ctx: ClientContext;
  readonly #request: CommitStatusRequest;
  readonly #bytes: Bytes;
  readonly #signature: Bytes | undefined;
  #status: Promise<Status> | undefined;

  constructor(ctx: ClientContext, request: CommitStatusRequest, signature: Bytes | undefined) {
    this.#ctx = ctx;
    this.#request = request;
    this.#bytes = commitStatusRequestCodec.encode(request);
    this.#signature = signature === undefined ? undefined : toLowSDer(signature);
  }

  getBytes(): Uint8Array {
    return this.#bytes;
  }
  getDigest(): Uint8Array {
    return this.#ctx.hash(this.#bytes);
  }
  getTransactionId(): string {
    return this.#request.txId;
  }

  getStatus(options: CallTimeouts = {}): Promise<Status> {
    // A committed status never changes: ask once, but ask again after a failure.
    this.#status ??= this.#fetch(options).catch((e: unknown) => {
      this.#status = undefined;
      throw e;
    });
    return this.#status;
  }

  async #fetch(options: CallTimeouts): Promise<Status> {
    const txId = this.#request.txId;
    try {
      const signed = await this.#ctx.signRequest(commitStatusRequestCodec, this.#request, this.#signature);
      // The gateway waits up to the request's timeout; give the HTTP call a little longer.
      const timeoutMs = options.timeoutMs ?? this.#request.timeoutMs + 5_000;
      const res = await this.#ctx.call(gatewayRoutes.commitStatus, signed, { timeoutMs });
      return {
        transactionId: txId,
        blockNumber: res.blockNumber,
        code: res.validationCode,
        codeName: res.validationCodeName,
        successful: res.validationCode === 0,
      };
    } catch (e) {
      throw wrap(CommitStatusError, txId, e);
    }
  }
}

export class SubmittedTransactionImpl extends CommitImpl implements SubmittedTransaction {
  readonly #result: Bytes;
  constructor(ctx: ClientContext, request: CommitStatusRequest, signature: Bytes | undefined, result: Bytes) {
    super(ctx, request, signature);
    this.#result = result;
  }
  getResult(): Uint8Array {
    return this.#result;
  }
}

/** Throws CommitError unless the status is VALID. */
export function assertCommitted(status: Status): void {
  if (!status.successful) {
    throw new CommitError({
      transactionId: status.transactionId,
      code: status.codeName,
      validationCode: status.code,
      blockNumber: status.blockNumber,
    });
  }
}
