/**
 * One base error for all of Loom. `code` is machine-readable and named after the domain
 * (`MVCC_READ_CONFLICT`, `MSP_UNKNOWN`, ...); `details` is a typed payload; `httpStatus` is what an
 * API answers with when this error crosses the wire.
 */
export type ErrorDetails = Record<string, unknown>;

export class LoomError<D extends ErrorDetails = ErrorDetails> extends Error {
  readonly code: string;
  readonly details: D;
  readonly httpStatus: number;

  constructor(code: string, message: string, options: { details?: D; httpStatus?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LoomError';
    this.code = code;
    this.details = options.details ?? ({} as D);
    this.httpStatus = options.httpStatus ?? 400;
  }

  /** The body an HTTP API sends for this error: never a stack trace. */
  toJSON(): { code: string; message: string; details: D } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export function isLoomError(e: unknown, code?: string): e is LoomError {
  return e instanceof LoomError && (code === undefined || e.code === code);
}

/** Wraps anything thrown into a LoomError, keeping LoomErrors as they are. */
export function toLoomError(e: unknown, code = 'INTERNAL', httpStatus = 500): LoomError {
  if (e instanceof LoomError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new LoomError(code, message, { httpStatus, cause: e });
}

/** Codes for malformed bytes on the wire, shared by every decoder. */
export const EncodingErrorCode = {
  MALFORMED: 'ENCODING_MALFORMED',
  NON_CANONICAL: 'ENCODING_NON_CANONICAL',
  WRONG_SHAPE: 'ENCODING_WRONG_SHAPE',
} as const;
