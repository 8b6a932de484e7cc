/**
 * The CA's HTTP contract, defined once for the server and the client: routes, bodies, and the
 * signed-token authentication.
 *
 * Token (every call except `cainfo`, `enroll`, `/healthz`, `/metrics`):
 *
 *   Authorization:    base64(certificate PEM) "." base64(DER ECDSA signature)
 *   X-Loom-Timestamp: milliseconds since the Unix epoch, decimal
 *   X-Loom-Nonce:     16..64 characters of base64url (the client uses 16 random bytes)
 *
 * The signature is low-S ECDSA P-256 / SHA-256 over the UTF-8 bytes of
 *
 *   method "." path "." base64(body) "." timestamp "." nonce
 *
 * where `method` is upper case, `path` is the request target exactly as sent (with the query
 * string, e.g. `/api/v1/certificates?id=peer0`), and `body` the exact request body bytes (empty
 * for GET and DELETE). Only `path` may contain ".", so the string splits one way only.
 */
import { sign, verifyOrThrow } from '@loom/common/crypto/signing';
import type { KeyObject } from 'node:crypto';

export const API_PREFIX = '/api/v1';
export const TIMESTAMP_HEADER = 'x-loom-timestamp';
export const NONCE_HEADER = 'x-loom-nonce';
export const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;
/** How far a token's timestamp may be from the server's clock, either way. */
export const TOKEN_WINDOW_MS = 5 * 60 * 1000;

export const Routes = {
  cainfo: { method: 'GET', path: '/cainfo' },
  register: { method: 'POST', path: '/register' },
  enroll: { method: 'POST', path: '/enroll' },
  reenroll: { method: 'POST', path: '/reenroll' },
  revoke: { method: 'POST', path: '/revoke' },
  gencrl: { method: 'POST', path: '/gencrl' },
  listIdentities: { method: 'GET', path: '/identities' },
  getIdentity: { method: 'GET', path: '/identities/:id' },
  addIdentity: { method: 'POST', path: '/identities' },
  modifyIdentity: { method: 'PUT', path: '/identities/:id' },
  removeIdentity: { method: 'DELETE', path: '/identities/:id' },
  listAffiliations: { method: 'GET', path: '/affiliations' },
  addAffiliation: { method: 'POST', path: '/affiliations' },
  removeAffiliation: { method: 'DELETE', path: '/affiliations/:name' },
  certificates: { method: 'GET', path: '/certificates' },
} as const satisfies Record<string, { method: 'GET' | 'POST' | 'PUT' | 'DELETE'; path: string }>;

/** A route's path with its `:params` filled in (URI-encoded), e.g. `/identities/peer0`. */
export function routePath(route: { readonly path: string }, params: Readonly<Record<string, string>> = {}): string {
  return route.path.replace(/:([A-Za-z]+)/g, (_, name: string) => {
    const v = params[name];
    if (v === undefined) throw new TypeError(`route ${route.path} needs :${name}`);
    return encodeURIComponent(v);
  });
}

export type IdentityType = 'client' | 'peer' | 'orderer' | 'admin' | 'user';
export const IDENTITY_TYPES: readonly IdentityType[] = ['client', 'peer', 'orderer', 'admin', 'user'];

export interface Attribute {
  readonly name: string;
  readonly value: string;
  /** Put into enrollment certificates by default (without `attr_reqs`). */
  readonly ecert?: boolean;
}

export interface AttributeRequest {
  readonly name: string;
  readonly optional?: boolean;
}

/** Fabric CA's envelope for every answer. */
export interface CaResponse<T> {
  readonly success: boolean;
  readonly result: T | null;
  readonly errors: ReadonlyArray<{ readonly code: string; readonly message: string }>;
  readonly messages: ReadonlyArray<{ readonly code: string; readonly message: string }>;
}

export interface CaInfoResult {
  readonly CAName: string;
  /** base64 of the PEM chain (root CA certificate). */
  readonly CAChain: string;
  /** base64 of the TLS CA root PEM. */
  readonly TLSCAChain: string;
  readonly Version: string;
}

export interface RegisterRequest {
  readonly id: string;
  readonly type?: IdentityType;
  readonly secret?: string;
  readonly max_enrollments?: number;
  readonly affiliation?: string;
  readonly attrs?: readonly Attribute[];
}

export interface EnrollRequest {
  /** PKCS#10 PEM. */
  readonly certificate_request: string;
  readonly profile?: 'tls' | '';
  readonly attr_reqs?: readonly AttributeRequest[];
  /** Extra subject alternative names (DNS names or IP addresses). */
  readonly hosts?: readonly string[];
}

export interface EnrollResult {
  /** base64 of the issued certificate PEM. */
  readonly Cert: string;
  readonly ServerInfo: { readonly CAName: string; readonly CAChain: string; readonly Version: string };
}

export interface RevokeRequest {
  readonly id?: string;
  readonly serial?: string;
  readonly aki?: string;
  readonly reason?: string;
  readonly gencrl?: boolean;
}

export interface RevokeResult {
  readonly RevokedCerts: ReadonlyArray<{ readonly Serial: string; readonly AKI: string }>;
  /** base64 of the CRL PEM, when `gencrl` was asked. */
  readonly CRL?: string;
}

export interface IdentityInfo {
  readonly id: string;
  readonly type: IdentityType;
  readonly affiliation: string;
  readonly attrs: readonly Attribute[];
  readonly max_enrollments: number;
}

export interface ModifyIdentityRequest {
  readonly type?: IdentityType;
  readonly affiliation?: string;
  /** Merged by name; an attribute with an empty value is removed. */
  readonly attrs?: readonly Attribute[];
  readonly max_enrollments?: number;
  readonly secret?: string;
}

export interface AffiliationInfo {
  readonly name: string;
  readonly affiliations?: readonly AffiliationInfo[];
}

export interface CertificateInfo {
  readonly id: string;
  readonly serial: string;
  readonly aki: string;
  readonly PEM: string;
  readonly revoked: boolean;
  readonly notAfter: string;
}

const enc = new TextEncoder();

/** The exact bytes a token signs; see the module comment. */
export function tokenMessage(
  method: string,
  path: string,
  body: Uint8Array,
  timestamp: string,
  nonce: string,
): Uint8Array {
  const b64 = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64');
  return enc.encode(`${method.toUpperCase()}.${path}.${b64}.${timestamp}.${nonce}`);
}

export interface SignedHeaders {
  readonly authorization: string;
  readonly [TIMESTAMP_HEADER]: string;
  readonly [NONCE_HEADER]: string;
}

export function createToken(opts: {
  certPem: string;
  privateKey: KeyObject;
  method: string;
  path: string;
  body: Uint8Array;
  timestamp: string;
  nonce: string;
}): SignedHeaders {
  const sig = sign(opts.privateKey, tokenMessage(opts.method, opts.path, opts.body, opts.timestamp, opts.nonce));
  const token = `${Buffer.from(opts.certPem, 'utf8').toString('base64')}.${Buffer.from(sig).toString('base64')}`;
  return { authorization: token, [TIMESTAMP_HEADER]: opts.timestamp, [NONCE_HEADER]: opts.nonce };
}

/** Splits a token; undefined when it is not two base64 parts. */
export function parseToken(token: string): { certPem: string; signature: Uint8Array } | undefined {
  const parts = token.trim().split('.');
  if (parts.length !== 2) return undefined;
  const [certB64, sigB64] = parts as [string, string];
  const b64 = /^[A-Za-z0-9+/]+={0,2}$/;
  if (!b64.test(certB64) || !b64.test(sigB64)) return undefined;
  return {
    certPem: Buffer.from(certB64, 'base64').toString('utf8'),
    signature: new Uint8Array(Buffer.from(sigB64, 'base64')),
  };
}

/** Throws (SIGNATURE_INVALID / SIGNATURE_HIGH_S from common) unless `signature` is a low-S signature by `publicKey`. */
export function verifyToken(publicKey: KeyObject, message: Uint8Array, signature: Uint8Array): void {
  verifyOrThrow(publicKey, message, signature);
}
