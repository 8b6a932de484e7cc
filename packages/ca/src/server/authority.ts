/**
 * The certificate authority's rules, independent of HTTP: who may register, enroll, revoke and
 * manage whom, and what goes into each certificate. Inputs are already-parsed request bodies; every
 * call stages its writes in one batch and commits it at the end, so a rejected call writes nothing.
 * Calls that write run one at a time, so two enrollments cannot both spend the last one left.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, X509Certificate as NodeX509 } from 'node:crypto';
import { promisify } from 'node:util';
import { isLoomError } from '@loom/common';
import { CaErrorCode, caError } from '../errors.js';
import {
  type AffiliationInfo,
  type Attribute,
  type AttributeRequest,
  type CaInfoResult,
  type CertificateInfo,
  type EnrollRequest,
  type EnrollResult,
  IDENTITY_TYPES,
  type IdentityInfo,
  type IdentityType,
  type ModifyIdentityRequest,
  NONCE_PATTERN,
  parseToken,
  type RegisterRequest,
  type RevokeRequest,
  type RevokeResult,
  TOKEN_WINDOW_MS,
  tokenMessage,
  verifyToken,
} from '../protocol.js';
import { type CaSigner, checkCsr, createCrl, hostsToSans, issueCertificate, normalizeHex } from './pki.js';
import { type CaStore, CaWriteBatch, type CertificateRecord, type IdentityRecord } from './store.js';

const scrypt = promisify(scryptCb) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>;

export const CA_VERSION = '0.1.0';

export type Clock = () => Date;

/** Attributes every registrar right is spelled with, as in Fabric CA. */
export const HF = {
  ROLES: 'hf.Registrar.Roles',
  DELEGATE_ROLES: 'hf.Registrar.DelegateRoles',
  ATTRIBUTES: 'hf.Registrar.Attributes',
  REVOKER: 'hf.Revoker',
  GEN_CRL: 'hf.GenCRL',
  INTERMEDIATE_CA: 'hf.IntermediateCA',
  AFFILIATION_MGR: 'hf.AffiliationMgr',
  ENROLLMENT_ID: 'hf.EnrollmentID',
  TYPE: 'hf.Type',
  AFFILIATION: 'hf.Affiliation',
} as const;

const BOOLEAN_RIGHTS: readonly string[] = [HF.REVOKER, HF.GEN_CRL, HF.INTERMEDIATE_CA, HF.AFFILIATION_MGR];
/** Set by the CA itself, never by a registrar. */
const RESERVED_ATTRS: readonly string[] = [HF.ENROLLMENT_ID, HF.TYPE, HF.AFFILIATION];

const ID_PATTERN = /^[A-Za-z0-9@._-]{1,64}$/;
const AFFILIATION_PATTERN = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const ATTR_NAME_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;

export interface AuthorityOptions {
  readonly name: string;
  readonly store: CaStore;
  readonly rootCa: CaSigner;
  readonly tlsCa: CaSigner;
  readonly clock: Clock;
  readonly defaultMaxEnrollments: number;
  readonly metrics?: { inc(name: string, labels?: Record<string, string>): void };
}

export interface Caller {
  readonly identity: IdentityRecord;
  readonly cert: CertificateRecord;
}

export interface TokenRequest {
  readonly method: string;
  /** The request target as sent, with its query string. */
  readonly url: string;
  readonly body: Uint8Array;
  readonly authorization: string | undefined;
  readonly timestamp: string | undefined;
  readonly nonce: string | undefined;
}

function bad(message: string, details: Record<string, unknown> = {}) {
  return caError(CaErrorCode.BAD_REQUEST, message, details);
}

function notAuthorized(message: string, details: Record<string, unknown> = {}) {
  return caError(CaErrorCode.NOT_AUTHORIZED, message, details);
}

function attrValue(attrs: readonly Attribute[], name: string): string | undefined {
  return attrs.find((a) => a.name === name)?.value;
}

/** Fabric's list syntax: comma-separated names, `*` for all, `prefix*` for a family. */
export function listAllows(list: string | undefined, item: string): boolean {
  if (!list) return false;
  return list
    .split(',')
    .map((s) => s.trim())
    .some((e) => e === '*' || e === item || (e.endsWith('*') && item.startsWith(e.slice(0, -1))));
}

/** True when `aff` is `scope` or lies under it; the root scope `''` covers everything. */
export function affiliationCovers(scope: string, aff: string): boolean {
  return scope === '' || aff === scope || aff.startsWith(`${scope}.`);
}

function roleOu(type: IdentityType): string {
  // `user` is Fabric CA's legacy type; under NodeOUs it acts as a client.
  return type === 'user' ? 'client' : type;
}

function toInfo(r: IdentityRecord): IdentityInfo {
  return { id: r.id, type: r.type, affiliation: r.affiliation, attrs: r.attrs, max_enrollments: r.maxEnrollments };
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

// ---- request body checks (bodies are untrusted JSON) ----

function optString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw bad(`${key} must be a string`, { field: key });
  return v;
}

function checkId(id: unknown, field = 'id'): string {
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
    throw bad(`${field} must be 1-64 characters of letters, digits, @ . _ -`, { field });
  }
  return id;
}

function checkType(type: unknown): IdentityType {
  if (typeof type !== 'string' || !(IDENTITY_TYPES as readonly string[]).includes(type)) {
    throw caError(
      CaErrorCode.INVALID_TYPE,
      `unknown identity type ${JSON.stringify(type)}; expected one of ${IDENTITY_TYPES.join(', ')}`,
      {
        type,
      },
    );
  }
  return type as IdentityType;
}

function checkMaxEnrollments(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < -1) {
    throw bad('max_enrollments must be -1 (unlimited), 0 (the CA default) or a count', { field: 'max_enrollments' });
  }
  return v;
}

function checkAttrs(v: unknown): Attribute[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw bad('attrs must be a list of {name, value, ecert}', { field: 'attrs' });
  const out: Attribute[] = [];
  for (const a of v) {
    if (typeof a !== 'object' || a === null)
      throw bad('attrs must be a list of {name, value, ecert}', { field: 'attrs' });
    const { name, value, ecert } = a as Record<string, unknown>;
    if (typeof name !== 'string' || !ATTR_NAME_PATTERN.test(name))
      throw bad(`invalid attribute name ${JSON.stringify(name)}`);
    if (typeof value !== 'string') throw bad(`attribute ${name}: value must be a string`);
    if (ecert !== undefined && typeof ecert !== 'boolean') throw bad(`attribute ${name}: ecert must be true or false`);
    if (out.some((x) => x.name === name)) throw bad(`attribute ${name} is given twice`);
    out.push({ name, value, ecert: ecert === true });
  }
  return out;
}

function checkAttrReqs(v: unknown): AttributeRequest[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw bad('attr_reqs must be a list of {name, optional}', { field: 'attr_reqs' });
  return v.map((r) => {
    const { name, optional } = (r ?? {}) as Record<string, unknown>;
    if (typeof name !== 'string' || name === '') throw bad('attr_reqs: each entry needs a name');
    if (optional !== undefined && typeof optional !== 'boolean')
      throw bad(`attr_reqs ${name}: optional must be a boolean`);
    return { name, optional: optional === true };
  });
}

function checkAffiliation(v: unknown, field = 'affiliation'): string {
  if (v === undefined || v === null || v === '' || v === '.') return '';
  if (typeof v !== 'string' || !AFFILIATION_PATTERN.test(v))
    throw bad(`${field} must be a dotted name like org1.department1`);
  return v;
}

function checkSecret(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' || v.length > 1024) throw bad('secret must be a string');
  return v;
}

function asBody(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw bad('request body must be a JSON object');
  return body as Record<string, unknown>;
}

export class CertificateAuthority {
  readonly #o: AuthorityOptions;
  readonly #nonces = new Map<string, number>();
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: AuthorityOptions) {
    this.#o = options;
  }

  get name(): string {
    return this.#o.name;
  }

  /** Runs `fn` after every earlier exclusive call has finished. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #now(): Date {
    return this.#o.clock();
  }

  /** First start: the bootstrap registrar and the configured affiliations; later starts add missing affiliations. */
  async bootstrap(admin: { id: string; secret: string }, affiliations: readonly string[]): Promise<void> {
    await this.#exclusive(async () => {
      const batch = new CaWriteBatch();
      for (const name of affiliations) {
        if (!(await this.#o.store.getAffiliation(name))) batch.putAffiliation({ name });
      }
      if (!(await this.#o.store.getIdentity(admin.id))) {
        const salt = randomBytes(16);
        batch.putIdentity({
          id: checkId(admin.id, 'bootstrap.id'),
          type: 'admin',
          affiliation: '',
          attrs: [
            { name: HF.ROLES, value: '*', ecert: false },
            { name: HF.DELEGATE_ROLES, value: '*', ecert: false },
            { name: HF.ATTRIBUTES, value: '*', ecert: false },
            { name: HF.REVOKER, value: 'true', ecert: false },
            { name: HF.GEN_CRL, value: 'true', ecert: false },
            { name: HF.INTERMEDIATE_CA, value: 'true', ecert: false },
            { name: HF.AFFILIATION_MGR, value: 'true', ecert: false },
          ],
          maxEnrollments: -1,
          enrollments: 0,
          secretHash: (await scrypt(admin.secret, salt, 32)).toString('base64'),
          secretSalt: salt.toString('base64'),
          revoked: false,
          createdAt: this.#now().toISOString(),
        });
      }
      await this.#o.store.commit(batch);
    });
  }

  caInfo(): CaInfoResult {
    return {
      CAName: this.#o.name,
      CAChain: b64(this.#o.rootCa.certPem),
      TLSCAChain: b64(this.#o.tlsCa.certPem),
      Version: CA_VERSION,
    };
  }

  // ---- authentication ----

  async #checkSecret(id: string, secret: string): Promise<IdentityRecord> {
    const identity = await this.#o.store.getIdentity(id);
    // Hash even for unknown ids, so timing does not tell which ids exist.
    const salt = identity ? Buffer.from(identity.secretSalt, 'base64') : Buffer.alloc(16);
    const got = await scrypt(secret, salt, 32);
    const want = identity ? Buffer.from(identity.secretHash, 'base64') : Buffer.alloc(32, 1);
    if (!identity || want.length !== got.length || !timingSafeEqual(want, got)) {
      throw caError(CaErrorCode.AUTH_FAILED, 'wrong enrollment ID or secret');
    }
    return identity;
  }

  /** Checks a signed token; see protocol.ts for the exact bytes. */
  async authenticate(req: TokenRequest): Promise<Caller> {
    const fail = (why: string) => caError(CaErrorCode.AUTH_FAILED, `authentication failed: ${why}`);
    if (!req.authorization) throw fail('no Authorization token');
    const token = parseToken(req.authorization);
    if (!token) throw fail('the token is not base64(certificate).base64(signature)');
    const { timestamp, nonce } = req;
    if (!timestamp || !/^\d{1,16}$/.test(timestamp)) throw fail('missing or malformed X-Loom-Timestamp');
    if (!nonce || !NONCE_PATTERN.test(nonce)) throw fail('missing or malformed X-Loom-Nonce');
    const now = this.#now().getTime();
    const ts = Number(timestamp);
    if (Math.abs(now - ts) > TOKEN_WINDOW_MS) {
      throw caError(
        CaErrorCode.TOKEN_STALE,
        `token timestamp is more than ${TOKEN_WINDOW_MS / 1000}s from the CA's clock`,
        {
          timestamp: ts,
          now,
        },
      );
    }
    let cert: NodeX509;
    try {
      cert = new NodeX509(token.certPem);
    } catch {
      throw fail('the token certificate is malformed');
    }
    const root = this.#o.rootCa;
    let issuedHere = false;
    try {
      issuedHere = cert.checkIssued(root.nodeCert) && cert.verify(root.publicKey);
    } catch {
      issuedHere = false;
    }
    if (!issuedHere) throw fail('certificate not issued by this CA');
    const record = await this.#o.store.getCertificate(normalizeHex(cert.serialNumber));
    if (!record || !new NodeX509(record.pem).raw.equals(cert.raw)) throw fail('certificate unknown to this CA');
    if (now < new Date(cert.validFrom).getTime() || now > new Date(cert.validTo).getTime()) {
      throw fail('certificate is expired or not yet valid');
    }
    try {
      verifyToken(cert.publicKey, tokenMessage(req.method, req.url, req.body, timestamp, nonce), token.signature);
    } catch (e) {
      throw caError(CaErrorCode.AUTH_FAILED, 'authentication failed: token signature does not verify', {
        reason: isLoomError(e) ? e.code : 'SIGNATURE_INVALID',
      });
    }
    if (record.revokedAt) throw caError(CaErrorCode.IDENTITY_REVOKED, `certificate ${record.serial} has been revoked`);
    this.#useNonce(nonce, ts, now);
    const identity = await this.#o.store.getIdentity(record.id);
    if (!identity) throw fail(`identity ${record.id} no longer exists`);
    if (identity.revoked) throw caError(CaErrorCode.IDENTITY_REVOKED, `identity ${identity.id} has been revoked`);
    return { identity, cert: record };
  }

  /** A nonce counts as used for as long as a token carrying it could be fresh. */
  #useNonce(nonce: string, ts: number, now: number): void {
    if (this.#nonces.size > 1000) {
      for (const [n, expiry] of this.#nonces) if (expiry < now) this.#nonces.delete(n);
    }
    const expiry = this.#nonces.get(nonce);
    if (expiry !== undefined && expiry >= now) {
      throw caError(CaErrorCode.TOKEN_REPLAYED, 'token nonce was already used');
    }
    this.#nonces.set(nonce, ts + TOKEN_WINDOW_MS);
  }

  // ---- authorization helpers ----

  #canManage(caller: IdentityRecord, type: IdentityType, affiliation: string): void {
    if (!listAllows(attrValue(caller.attrs, HF.ROLES), type)) {
      throw notAuthorized(`${caller.id} may not act on identities of type ${type} (${HF.ROLES})`, { type });
    }
    if (!affiliationCovers(caller.affiliation, affiliation)) {
      throw notAuthorized(`${caller.id} may not act on affiliation ${JSON.stringify(affiliation)}`, { affiliation });
    }
  }

  #checkRight(caller: IdentityRecord, right: string): void {
    if (attrValue(caller.attrs, right) !== 'true') throw notAuthorized(`${caller.id} lacks ${right}`, { right });
  }

  /** What a registrar may hand out: names its hf.Registrar.Attributes allow, and no more rights than it holds. */
  #checkGrantable(caller: IdentityRecord, attrs: readonly Attribute[]): void {
    for (const a of attrs) {
      if (RESERVED_ATTRS.includes(a.name)) throw notAuthorized(`${a.name} is set by the CA and cannot be registered`);
      if (!listAllows(attrValue(caller.attrs, HF.ATTRIBUTES), a.name)) {
        throw notAuthorized(`${caller.id} may not register attribute ${a.name} (${HF.ATTRIBUTES})`, {
          attribute: a.name,
        });
      }
      if (BOOLEAN_RIGHTS.includes(a.name)) {
        if (a.value !== 'true' && a.value !== 'false') throw bad(`${a.name} must be 'true' or 'false'`);
        if (a.value === 'true' && attrValue(caller.attrs, a.name) !== 'true') {
          throw notAuthorized(`${caller.id} cannot grant ${a.name} it does not hold`, { attribute: a.name });
        }
      }
      if (a.name === HF.ROLES || a.name === HF.DELEGATE_ROLES) {
        const mine = attrValue(caller.attrs, HF.DELEGATE_ROLES) ?? attrValue(caller.attrs, HF.ROLES);
        for (const role of a.value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)) {
          if (!listAllows(mine, role)) throw notAuthorized(`${caller.id} cannot delegate role ${role}`, { role });
        }
      }
      if (a.name === HF.ATTRIBUTES) {
        for (const name of a.value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)) {
          const mine = attrValue(caller.attrs, HF.ATTRIBUTES);
          if (!(listAllows(mine, name) || (name.endsWith('*') && listAllows(mine, name.slice(0, -1))))) {
            throw notAuthorized(`${caller.id} cannot delegate attribute ${name}`, { attribute: name });
          }
        }
      }
    }
  }

  async #checkAffiliationExists(affiliation: string): Promise<void> {
    if (affiliation !== '' && !(await this.#o.store.getAffiliation(affiliation))) {
      throw caError(CaErrorCode.AFFILIATION_NOT_FOUND, `affiliation ${affiliation} does not exist`, { affiliation });
    }
  }

  /**
   * The identity `id`, if the caller may act on it. Only reading oneself needs no registrar right:
   * changing, removing or revoking oneself does, or any identity could raise its own limits.
   */
  async #targetFor(caller: IdentityRecord, id: string, mode: 'read' | 'write'): Promise<IdentityRecord> {
    const target = await this.#o.store.getIdentity(id);
    if (!target) throw caError(CaErrorCode.IDENTITY_NOT_FOUND, `identity ${id} does not exist`, { id });
    if (!(mode === 'read' && target.id === caller.id)) this.#canManage(caller, target.type, target.affiliation);
    return target;
  }

  // ---- register / enroll / reenroll ----

  register(caller: Caller, rawBody: unknown): Promise<{ secret: string }> {
    return this.#exclusive(async () => {
      const body = asBody(rawBody) as Record<string, unknown> & Partial<RegisterRequest>;
      const id = checkId(body.id);
      const type = checkType(body.type ?? 'client');
      const affiliation = checkAffiliation(body.affiliation);
      const attrs = checkAttrs(body.attrs);
      let maxEnrollments = checkMaxEnrollments(body.max_enrollments) ?? 0;
      if (maxEnrollments === 0) maxEnrollments = this.#o.defaultMaxEnrollments;
      const secret = checkSecret(body.secret) ?? randomBytes(12).toString('base64url');

      this.#canManage(caller.identity, type, affiliation);
      this.#checkGrantable(caller.identity, attrs);
      await this.#checkAffiliationExists(affiliation);
      if (await this.#o.store.getIdentity(id)) {
        throw caError(CaErrorCode.IDENTITY_EXISTS, `identity ${id} is already registered`, { id });
      }
      const salt = randomBytes(16);
      const batch = new CaWriteBatch().putIdentity({
        id,
        type,
        affiliation,
        attrs,
        maxEnrollments,
        enrollments: 0,
        secretHash: (await scrypt(secret, salt, 32)).toString('base64'),
        secretSalt: salt.toString('base64'),
        revoked: false,
        createdAt: this.#now().toISOString(),
      });
      await this.#o.store.commit(batch);
      this.#o.metrics?.inc('registrations');
      return { secret };
    });
  }

  /** Enroll with id and secret (HTTP Basic). */
  enroll(id: string, secret: string, rawBody: unknown): Promise<EnrollResult> {
    return this.#exclusive(async () => {
      const identity = await this.#checkSecret(id, secret);
      if (identity.revoked) throw caError(CaErrorCode.IDENTITY_REVOKED, `identity ${id} has been revoked`);
      if (identity.maxEnrollments !== -1 && identity.enrollments >= identity.maxEnrollments) {
        throw caError(
          CaErrorCode.ENROLLMENTS_EXHAUSTED,
          `identity ${id} has used all ${identity.maxEnrollments} enrollments its secret allowed`,
          { id, maxEnrollments: identity.maxEnrollments },
        );
      }
      const batch = new CaWriteBatch();
      const result = await this.#issue(identity, rawBody, batch);
      batch.putIdentity({ ...identity, enrollments: identity.enrollments + 1 });
      await this.#o.store.commit(batch);
      this.#o.metrics?.inc('enrollments', { kind: 'enroll' });
      return result;
    });
  }

  /** A new certificate for the caller, authenticated by its current one; spends no enrollment. */
  reenroll(caller: Caller, rawBody: unknown): Promise<EnrollResult> {
    return this.#exclusive(async () => {
      const identity = await this.#o.store.getIdentity(caller.identity.id);
      if (!identity || identity.revoked)
        throw caError(CaErrorCode.IDENTITY_REVOKED, `identity ${caller.identity.id} has been revoked`);
      const batch = new CaWriteBatch();
      const result = await this.#issue(identity, rawBody, batch);
      await this.#o.store.commit(batch);
      this.#o.metrics?.inc('enrollments', { kind: 'reenroll' });
      return result;
    });
  }

  async #issue(identity: IdentityRecord, rawBody: unknown, batch: CaWriteBatch): Promise<EnrollResult> {
    const body = asBody(rawBody) as Record<string, unknown> & Partial<EnrollRequest>;
    const profile = optString(body, 'profile') ?? '';
    if (profile !== '' && profile !== 'tls')
      throw bad(`unknown profile ${JSON.stringify(profile)}; expected 'tls' or none`);
    const hosts = body.hosts ?? [];
    if (!Array.isArray(hosts) || !hosts.every((h) => typeof h === 'string' && h.length > 0 && h.length < 256)) {
      throw bad('hosts must be a list of names', { field: 'hosts' });
    }
    const attrReqs = checkAttrReqs(body.attr_reqs);
    const csr = await checkCsr(body.certificate_request);
    const tls = profile === 'tls';
    const ca = tls ? this.#o.tlsCa : this.#o.rootCa;
    const issued = await issueCertificate(ca, {
      csr,
      enrollmentId: identity.id,
      profile: tls ? 'tls' : 'ecert',
      ous: [roleOu(identity.type), ...(identity.affiliation ? identity.affiliation.split('.') : [])],
      ...(tls ? {} : { attrs: this.#certAttrs(identity, attrReqs) }),
      extraSans: hostsToSans(hosts),
      now: this.#now(),
    });
    batch.putCertificate({
      serial: issued.serial,
      id: identity.id,
      aki: ca.ski,
      profile: tls ? 'tls' : 'ecert',
      pem: issued.pem,
      notBefore: issued.notBefore.toISOString(),
      notAfter: issued.notAfter.toISOString(),
    });
    return {
      Cert: b64(issued.pem),
      ServerInfo: { CAName: this.#o.name, CAChain: b64(ca.certPem), Version: CA_VERSION },
    };
  }

  /**
   * Fabric CA's rule: without attr_reqs, the identity's `ecert: true` attributes; with them, exactly
   * the requested ones (a missing non-optional one is an error). The CA's own hf.EnrollmentID,
   * hf.Type and hf.Affiliation are always there.
   */
  #certAttrs(identity: IdentityRecord, reqs: readonly AttributeRequest[] | undefined): Record<string, string> {
    const own: Record<string, string> = {};
    if (reqs === undefined) {
      for (const a of identity.attrs) if (a.ecert) own[a.name] = a.value;
    } else {
      for (const r of reqs) {
        if (RESERVED_ATTRS.includes(r.name)) continue;
        const v = attrValue(identity.attrs, r.name);
        if (v === undefined) {
          if (r.optional) continue;
          throw caError(CaErrorCode.ATTR_NOT_FOUND, `identity ${identity.id} has no attribute ${r.name}`, {
            attribute: r.name,
          });
        }
        own[r.name] = v;
      }
    }
    return {
      ...own,
      [HF.ENROLLMENT_ID]: identity.id,
      [HF.TYPE]: identity.type,
      [HF.AFFILIATION]: identity.affiliation,
    };
  }

  // ---- revocation ----

  revoke(caller: Caller, rawBody: unknown): Promise<RevokeResult> {
    return this.#exclusive(async () => {
      const body = asBody(rawBody) as Record<string, unknown> & Partial<RevokeRequest>;
      this.#checkRight(caller.identity, HF.REVOKER);
      const id = optString(body, 'id');
      const serialIn = optString(body, 'serial');
      const akiIn = optString(body, 'aki');
      const reason = optString(body, 'reason') ?? 'unspecified';
      const gencrl = body.gencrl;
      if (gencrl !== undefined && typeof gencrl !== 'boolean') throw bad('gencrl must be true or false');
      if (gencrl) this.#checkRight(caller.identity, HF.GEN_CRL);
      const now = this.#now().toISOString();
      const batch = new CaWriteBatch();
      const revoked: CertificateRecord[] = [];
      if (id) {
        const target = await this.#targetFor(caller.identity, checkId(id), 'write');
        batch.putIdentity({ ...target, revoked: true });
        for (const c of await this.#o.store.certificatesOf(target.id)) {
          if (c.revokedAt) continue;
          const r = { ...c, revokedAt: now, reason };
          batch.putCertificate(r);
          revoked.push(r);
        }
      } else if (serialIn && akiIn) {
        if (!/^[0-9a-fA-F:]+$/.test(serialIn) || !/^[0-9a-fA-F:]+$/.test(akiIn))
          throw bad('serial and aki must be hex');
        const serial = normalizeHex(serialIn.replaceAll(':', ''));
        const c = await this.#o.store.getCertificate(serial);
        if (!c || c.aki !== akiIn.replaceAll(':', '').toLowerCase()) {
          throw caError(CaErrorCode.CERT_NOT_FOUND, `no certificate with serial ${serialIn} and AKI ${akiIn}`);
        }
        await this.#targetFor(caller.identity, c.id, 'write');
        if (!c.revokedAt) {
          const r = { ...c, revokedAt: now, reason };
          batch.putCertificate(r);
          revoked.push(r);
        }
      } else {
        throw bad('revoke needs an id, or a serial and an aki');
      }
      await this.#o.store.commit(batch);
      this.#o.metrics?.inc('revocations');
      const result: RevokeResult = { RevokedCerts: revoked.map((c) => ({ Serial: c.serial, AKI: c.aki })) };
      return gencrl ? { ...result, CRL: b64(await this.#crlPem()) } : result;
    });
  }

  async gencrl(caller: Caller): Promise<{ CRL: string }> {
    this.#checkRight(caller.identity, HF.GEN_CRL);
    return { CRL: b64(await this.#crlPem()) };
  }

  /** The root CA's CRL: every revoked enrollment certificate it issued. */
  async #crlPem(): Promise<string> {
    const certs = await this.#o.store.listCertificates();
    const entries = certs
      .filter((c) => c.revokedAt && c.aki === this.#o.rootCa.ski)
      .map((c) => ({ serial: c.serial, revokedAt: new Date(c.revokedAt!) }));
    return createCrl(this.#o.rootCa, entries, this.#now());
  }

  // ---- identities ----

  async listIdentities(caller: Caller): Promise<{ identities: IdentityInfo[]; caname: string }> {
    const all = await this.#o.store.listIdentities();
    const visible = all.filter(
      (r) =>
        r.id === caller.identity.id ||
        (listAllows(attrValue(caller.identity.attrs, HF.ROLES), r.type) &&
          affiliationCovers(caller.identity.affiliation, r.affiliation)),
    );
    return { identities: visible.map(toInfo), caname: this.#o.name };
  }

  async getIdentity(caller: Caller, id: string): Promise<IdentityInfo & { caname: string }> {
    return { ...toInfo(await this.#targetFor(caller.identity, checkId(id), 'read')), caname: this.#o.name };
  }

  modifyIdentity(
    caller: Caller,
    id: string,
    rawBody: unknown,
  ): Promise<IdentityInfo & { secret?: string; caname: string }> {
    return this.#exclusive(async () => {
      const body = asBody(rawBody) as Record<string, unknown> & Partial<ModifyIdentityRequest>;
      const target = await this.#targetFor(caller.identity, checkId(id), 'write');
      const type = body.type === undefined ? target.type : checkType(body.type);
      const affiliation = body.affiliation === undefined ? target.affiliation : checkAffiliation(body.affiliation);
      if (type !== target.type || affiliation !== target.affiliation)
        this.#canManage(caller.identity, type, affiliation);
      await this.#checkAffiliationExists(affiliation);
      const changes = checkAttrs(body.attrs);
      this.#checkGrantable(caller.identity, changes);
      const attrs = [...target.attrs];
      for (const c of changes) {
        const i = attrs.findIndex((a) => a.name === c.name);
        if (c.value === '') {
          if (i >= 0) attrs.splice(i, 1);
        } else if (i >= 0) attrs[i] = c;
        else attrs.push(c);
      }
      let maxEnrollments = checkMaxEnrollments(body.max_enrollments) ?? target.maxEnrollments;
      if (maxEnrollments === 0) maxEnrollments = this.#o.defaultMaxEnrollments;
      const secret = checkSecret(body.secret);
      let secretFields: Pick<IdentityRecord, 'secretHash' | 'secretSalt' | 'enrollments'> = target;
      if (secret) {
        const salt = randomBytes(16);
        // A new secret is good for a fresh count of enrollments.
        secretFields = {
          secretHash: (await scrypt(secret, salt, 32)).toString('base64'),
          secretSalt: salt.toString('base64'),
          enrollments: 0,
        };
      }
      const updated: IdentityRecord = { ...target, ...secretFields, type, affiliation, attrs, maxEnrollments };
      await this.#o.store.commit(new CaWriteBatch().putIdentity(updated));
      return { ...toInfo(updated), ...(secret ? { secret } : {}), caname: this.#o.name };
    });
  }

  removeIdentity(caller: Caller, id: string, force: boolean): Promise<IdentityInfo & { caname: string }> {
    return this.#exclusive(async () => {
      const target = await this.#targetFor(caller.identity, checkId(id), 'write');
      if (target.id === caller.identity.id && !force) {
        throw notAuthorized('an identity cannot remove itself without force=true');
      }
      // Removing an identity also revokes its certificates, in the same batch.
      const batch = new CaWriteBatch().deleteIdentity(target.id);
      await this.#revokeAllOf(target.id, batch, 'cessationOfOperation');
      await this.#o.store.commit(batch);
      return { ...toInfo(target), caname: this.#o.name };
    });
  }

  async #revokeAllOf(id: string, batch: CaWriteBatch, reason: string): Promise<void> {
    const now = this.#now().toISOString();
    for (const c of await this.#o.store.certificatesOf(id)) {
      if (!c.revokedAt) batch.putCertificate({ ...c, revokedAt: now, reason });
    }
  }

  // ---- affiliations ----

  async listAffiliations(caller: Caller): Promise<AffiliationInfo & { caname: string }> {
    const scope = caller.identity.affiliation;
    const names = (await this.#o.store.listAffiliations())
      .map((a) => a.name)
      .filter((n) => affiliationCovers(scope, n))
      .sort();
    const build = (parent: string): AffiliationInfo[] =>
      names
        .filter((n) =>
          parent === '' ? !n.includes('.') : n.startsWith(`${parent}.`) && !n.slice(parent.length + 1).includes('.'),
        )
        .map((n) => {
          const children = build(n);
          return children.length ? { name: n, affiliations: children } : { name: n };
        });
    const top = scope === '' ? build('') : names.includes(scope) ? [{ name: scope, affiliations: build(scope) }] : [];
    return { name: '', affiliations: top, caname: this.#o.name };
  }

  addAffiliation(caller: Caller, rawBody: unknown, force: boolean): Promise<{ name: string; caname: string }> {
    return this.#exclusive(async () => {
      const body = asBody(rawBody);
      this.#checkRight(caller.identity, HF.AFFILIATION_MGR);
      const name = checkAffiliation(body.name, 'name');
      if (name === '') throw bad('name is required');
      if (!affiliationCovers(caller.identity.affiliation, name))
        throw notAuthorized(`${name} is outside ${caller.identity.id}'s affiliation`);
      if (await this.#o.store.getAffiliation(name))
        throw caError(CaErrorCode.AFFILIATION_EXISTS, `affiliation ${name} exists`);
      const batch = new CaWriteBatch().putAffiliation({ name });
      const parts = name.split('.');
      for (let i = 1; i < parts.length; i++) {
        const parent = parts.slice(0, i).join('.');
        if (await this.#o.store.getAffiliation(parent)) continue;
        if (!force)
          throw caError(CaErrorCode.AFFILIATION_NOT_FOUND, `parent affiliation ${parent} does not exist (use force)`);
        batch.putAffiliation({ name: parent });
      }
      await this.#o.store.commit(batch);
      return { name, caname: this.#o.name };
    });
  }

  removeAffiliation(caller: Caller, name: string, force: boolean): Promise<{ name: string; caname: string }> {
    return this.#exclusive(async () => {
      this.#checkRight(caller.identity, HF.AFFILIATION_MGR);
      const aff = checkAffiliation(name, 'name');
      if (!affiliationCovers(caller.identity.affiliation, aff) || aff === caller.identity.affiliation) {
        throw notAuthorized(`${aff} is outside what ${caller.identity.id} may remove`);
      }
      if (!(await this.#o.store.getAffiliation(aff)))
        throw caError(CaErrorCode.AFFILIATION_NOT_FOUND, `affiliation ${aff} does not exist`);
      const subs = (await this.#o.store.listAffiliations()).filter(
        (a) => a.name !== aff && affiliationCovers(aff, a.name),
      );
      const members = (await this.#o.store.listIdentities()).filter(
        (i) => i.affiliation !== '' && affiliationCovers(aff, i.affiliation),
      );
      if ((subs.length > 0 || members.length > 0) && !force) {
        throw caError(
          CaErrorCode.AFFILIATION_IN_USE,
          `affiliation ${aff} has ${subs.length} sub-affiliations and ${members.length} identities (use force)`,
        );
      }
      const batch = new CaWriteBatch().deleteAffiliation(aff);
      for (const s of subs) batch.deleteAffiliation(s.name);
      for (const m of members) {
        batch.deleteIdentity(m.id);
        await this.#revokeAllOf(m.id, batch, 'affiliationChanged');
      }
      await this.#o.store.commit(batch);
      return { name: aff, caname: this.#o.name };
    });
  }

  // ---- certificates ----

  async certificates(
    caller: Caller,
    query: Record<string, unknown>,
  ): Promise<{ certs: CertificateInfo[]; caname: string }> {
    const id = typeof query.id === 'string' && query.id !== '' ? query.id : undefined;
    const serial = typeof query.serial === 'string' && query.serial !== '' ? normalizeHex(query.serial) : undefined;
    const revoked = query.revoked === 'true' ? true : query.revoked === 'false' ? false : undefined;
    const identities = new Map((await this.#o.store.listIdentities()).map((i) => [i.id, i]));
    const visible = (c: CertificateRecord): boolean => {
      if (c.id === caller.identity.id) return true;
      const owner = identities.get(c.id);
      // Certificates of removed identities stay visible to root-scope registrars only.
      if (!owner)
        return caller.identity.affiliation === '' && listAllows(attrValue(caller.identity.attrs, HF.ROLES), '*');
      return (
        listAllows(attrValue(caller.identity.attrs, HF.ROLES), owner.type) &&
        affiliationCovers(caller.identity.affiliation, owner.affiliation)
      );
    };
    const certs = (await this.#o.store.listCertificates())
      .filter((c) => (id === undefined || c.id === id) && (serial === undefined || c.serial === serial))
      .filter((c) => revoked === undefined || Boolean(c.revokedAt) === revoked)
      .filter(visible)
      .map((c) => ({
        id: c.id,
        serial: c.serial,
        aki: c.aki,
        PEM: c.pem,
        revoked: Boolean(c.revokedAt),
        notAfter: c.notAfter,
      }));
    return { certs, caname: this.#o.name };
  }
}
