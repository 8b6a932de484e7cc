/**
 * Errors of the client SDK, after fabric-gateway's: a base `GatewayError` carrying the gateway's
 * machine-readable `code` and per-endorser `details`, and one class per step that failed, each with
 * the transaction id. Portable.
 */
import { LoomError } from '@loom/common/portable';

/** What one endorser (or evaluating peer) said. */
export interface ErrorDetail {
  readonly mspId: string;
  readonly endpoint: string;
  readonly code: string;
  readonly message: string;
}

export interface GatewayErrorOptions {
  readonly code: string;
  readonly message: string;
  readonly details?: readonly ErrorDetail[];
  readonly cause?: unknown;
  readonly httpStatus?: number;
  readonly transactionId?: string;
}

function endorsersOf(cause: unknown): ErrorDetail[] {
  if (!(cause instanceof LoomError)) return [];
  const e = (cause.details as { endorsers?: unknown }).endorsers;
  return Array.isArray(e) ? (e as ErrorDetail[]) : [];
}

export class GatewayError extends LoomError<{ endorsers: readonly ErrorDetail[] }> {
  /** Per-endorser details (empty when the failure was not an endorser's). */
  readonly endorsers: readonly ErrorDetail[];
  readonly transactionId: string | undefined;

  constructor(options: GatewayErrorOptions) {
    const endorsers = options.details ?? endorsersOf(options.cause);
    super(options.code, options.message, {
      details: { endorsers },
      httpStatus: options.httpStatus ?? (options.cause instanceof LoomError ? options.cause.httpStatus : 500),
      cause: options.cause,
    });
    this.name = 'GatewayError';
    this.endorsers = endorsers;
    this.transactionId = options.transactionId;
  }
}

/** Evaluating a transaction failed. */
export class EvaluateError extends GatewayError {
  override readonly transactionId: string;
  constructor(options: GatewayErrorOptions & { transactionId: string }) {
    super(options);
    this.name = 'EvaluateError';
    this.transactionId = options.transactionId;
  }
}

/** Collecting endorsements failed (chaincode error, mismatch, no endorsers, ...). */
export class EndorseError extends GatewayError {
  override readonly transactionId: string;
  constructor(options: GatewayErrorOptions & { transactionId: string }) {
    super(options);
    this.name = 'EndorseError';
    this.transactionId = options.transactionId;
  }
}

/** Handing the endorsed transaction to the ordering service failed. */
export class SubmitError extends GatewayError {
  override readonly transactionId: string;
  constructor(options: GatewayErrorOptions & { transactionId: string }) {
    super(options);
    this.name = 'SubmitError';
    this.transactionId = options.transactionId;
  }
}

/** Finding out whether the transaction committed failed (the transaction may still commit). */
export class CommitStatusError extends GatewayError {
  override readonly transactionId: string;
  constructor(options: GatewayErrorOptions & { transactionId: string }) {
    super(options);
    this.name = 'CommitStatusError';
    this.transactionId = options.transactionId;
  }
}

/** The transaction committed as invalid; `code` is its validation code name, e.g. `MVCC_READ_CONFLICT`. */
export class CommitError extends GatewayError {
  override readonly transactionId: string;
  readonly blockNumber: number;
  /** The validation code number (Fabric's TxValidationCode). */
  readonly validationCode: number;
  constructor(options: {
    transactionId: string;
    code: string;
    validationCode: number;
    blockNumber: number;
  }) {
    super({
      code: options.code,
      message: `transaction ${options.transactionId} failed to commit with status code ${options.validationCode} (${options.code})`,
      transactionId: options.transactionId,
      httpStatus: 409,
    });
    this.name = 'CommitError';
    this.transactionId = options.transactionId;
    this.blockNumber = options.blockNumber;
    this.validationCode = options.validationCode;
  }
}

export type TransactionErrorClass<E extends GatewayError> = new (
  options: GatewayErrorOptions & { transactionId: string },
) => E;

/** Wraps whatever a step threw as that step's error, keeping the server's code and endorser details. */
export function wrapError<E extends GatewayError>(
  E: TransactionErrorClass<E>,
  transactionId: string,
  cause: unknown,
): E {
  if (cause instanceof E) return cause;
  const code = cause instanceof LoomError ? cause.code : 'UNAVAILABLE';
  const message = cause instanceof Error ? cause.message : String(cause);
  return new E({ code, message, cause, transactionId });
}
