import { LoomError } from '@loom/common';

/**
 * Machine-readable codes the CA answers with, in `errors[].code` of a Fabric-CA-shaped body.
 * 401: the caller could not be authenticated; 403: authenticated but not allowed; 400: bad input.
 */
export const CaErrorCode = {
  /** Wrong enrollment secret, unknown identity, bad token signature or a certificate this CA did not issue. */
  AUTH_FAILED: 'CA_AUTH_FAILED',
  /** The identity used every enrollment its secret allowed. */
  ENROLLMENTS_EXHAUSTED: 'CA_ENROLLMENTS_EXHAUSTED',
  /** The token's timestamp is outside the freshness window. */
  TOKEN_STALE: 'CA_TOKEN_STALE',
  /** The token's nonce was already used inside the freshness window. */
  TOKEN_REPLAYED: 'CA_TOKEN_REPLAYED',
  /** A registrar lacks the role, attribute, affiliation or hf.* right the call needs. */
  NOT_AUTHORIZED: 'CA_NOT_AUTHORIZED',
  /** The caller's certificate or identity has been revoked. */
  IDENTITY_REVOKED: 'CA_IDENTITY_REVOKED',
  BAD_REQUEST: 'CA_BAD_REQUEST',
  MALFORMED_JSON: 'CA_MALFORMED_JSON',
  CSR_INVALID: 'CA_CSR_INVALID',
  INVALID_TYPE: 'CA_INVALID_TYPE',
  IDENTITY_EXISTS: 'CA_IDENTITY_EXISTS',
  IDENTITY_NOT_FOUND: 'CA_IDENTITY_NOT_FOUND',
  CERT_NOT_FOUND: 'CA_CERT_NOT_FOUND',
  AFFILIATION_NOT_FOUND: 'CA_AFFILIATION_NOT_FOUND',
  AFFILIATION_EXISTS: 'CA_AFFILIATION_EXISTS',
  AFFILIATION_IN_USE: 'CA_AFFILIATION_IN_USE',
  /** A non-optional attribute in `attr_reqs` that the identity does not have. */
  ATTR_NOT_FOUND: 'CA_ATTR_NOT_FOUND',
  NOT_FOUND: 'CA_NOT_FOUND',
  CONFIG_INVALID: 'CA_CONFIG_INVALID',
  /** The client could not reach the CA, or the CA answered with something that is not its API. */
  UNAVAILABLE: 'CA_UNAVAILABLE',
  INTERNAL: 'CA_INTERNAL',
} as const;
export type CaErrorCode = (typeof CaErrorCode)[keyof typeof CaErrorCode];

const DEFAULT_STATUS: Record<string, number> = {
  [CaErrorCode.AUTH_FAILED]: 401,
  [CaErrorCode.TOKEN_STALE]: 401,
  [CaErrorCode.TOKEN_REPLAYED]: 401,
  [CaErrorCode.IDENTITY_REVOKED]: 401,
  [CaErrorCode.ENROLLMENTS_EXHAUSTED]: 403,
  [CaErrorCode.NOT_AUTHORIZED]: 403,
  [CaErrorCode.IDENTITY_EXISTS]: 409,
  [CaErrorCode.AFFILIATION_EXISTS]: 409,
  [CaErrorCode.AFFILIATION_IN_USE]: 409,
  [CaErrorCode.IDENTITY_NOT_FOUND]: 404,
  [CaErrorCode.CERT_NOT_FOUND]: 404,
  [CaErrorCode.AFFILIATION_NOT_FOUND]: 404,
  [CaErrorCode.NOT_FOUND]: 404,
  [CaErrorCode.UNAVAILABLE]: 503,
  [CaErrorCode.INTERNAL]: 500,
};

export function caError(code: CaErrorCode, message: string, details: Record<string, unknown> = {}): LoomError {
  return new LoomError(code, message, { httpStatus: DEFAULT_STATUS[code] ?? 400, details });
}
