/**
 * One organization's MSP: which certificates are its members, what role each plays, and whether a
 * member is an admin. Pure: no clock (callers pass `now`), no file system.
 *
 * Rules enforced (Fabric MSP semantics):
 * - a member certificate chains through this MSP's intermediates to one of its roots, every signature
 *   on the way checked; root and intermediate certificates are CA certificates, the member is not;
 * - every certificate of the chain is within its validity period at `now`;
 * - no certificate of the chain is listed in a CRL signed by its own issuer;
 * - with NodeOUs enabled, the certificate carries exactly one of the client/peer/orderer/admin OUs;
 * - admins are the admin-OU holders and the certificates listed in `admins`.
 */
import type { KeyObject } from 'node:crypto';
import { verifyOrThrow, verify as verifySig } from '../crypto/signing.js';
import { LoomError } from '../errors.js';
import type { NodeRole } from '../identity-types.js';
import { bytesEqual, isIssuedBy, type ParsedCertificate, parseCertificate, parseCrl } from './certificate.js';
import {
  type CertificateSubject,
  type MspConfig,
  MspErrorCode,
  type SerializedIdentity,
  type ValidatedIdentity,
} from './types.js';

export interface Msp {
  readonly mspId: string;
  readonly config: MspConfig;
  /** Validates a member certificate (PEM text or DER) at `now`; throws a LoomError with an MSP_* code. */
  validate(cert: string | Uint8Array, now: Date): ValidatedIdentity;
}

interface CaNode {
  readonly cert: ParsedCertificate;
  /** Undefined for a root. */
  readonly parent: CaNode | undefined;
  /** Serials revoked by CRLs this CA signed. */
  readonly revoked: Set<string>;
}

/** What the MSP manager's cache needs besides the identity: the window in which it stays valid. */
export interface ValidationResult {
  readonly identity: ValidatedIdentity;
  /** Latest notBefore along the chain. */
  readonly validFrom: Date;
  /** Earliest notAfter along the chain. */
  readonly validUntil: Date;
}

const textEncoder = new TextEncoder();

function mspError(code: string, message: string, httpStatus: number, details: Record<string, unknown>): LoomError {
  return new LoomError(code, message, { httpStatus, details });
}

function configInvalid(mspId: string, reason: string): LoomError {
  return mspError(MspErrorCode.CONFIG_INVALID, `MSP ${mspId}: ${reason}`, 400, { mspId, reason });
}

class MemberIdentity implements ValidatedIdentity {
  readonly mspId: string;
  readonly role: NodeRole | undefined;
  readonly isAdmin: boolean;
  readonly id: string;
  readonly certPem: string;
  readonly certDer: Uint8Array;
  readonly publicKey: KeyObject;
  readonly subject: CertificateSubject;
  readonly attributes: Readonly<Record<string, string>>;
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly serialized: SerializedIdentity;

  constructor(
    mspId: string,
    cert: ParsedCertificate,
    role: NodeRole | undefined,
    isAdmin: boolean,
    idBytes?: Uint8Array,
  ) {
    this.mspId = mspId;
    this.role = role;
    this.isAdmin = isAdmin;
    this.id = cert.id;
    this.certPem = cert.pem;
    this.certDer = cert.der;
    this.publicKey = cert.publicKey;
    this.subject = cert.subject;
    this.attributes = cert.attributes;
    this.serialNumber = cert.serialNumber;
    this.notBefore = cert.notBefore;
    this.notAfter = cert.notAfter;
    this.serialized = { mspId, idBytes: idBytes ?? textEncoder.encode(cert.pem) };
  }

  verify(message: Uint8Array, sig: Uint8Array): void {
    verifyOrThrow(this.publicKey, message, sig);
  }

  verifies(message: Uint8Array, sig: Uint8Array): boolean {
    return verifySig(this.publicKey, message, sig);
  }
}

export class OrgMsp implements Msp {
  readonly mspId: string;
  readonly config: MspConfig;
  readonly #cas: CaNode[] = [];
  readonly #adminIds = new Set<string>();
  readonly #roleByOu: Map<string, NodeRole> | undefined;

  constructor(config: MspConfig) {
    const mspId = config.mspId;
    if (typeof mspId !== 'string' || mspId === '') throw configInvalid(String(mspId), 'mspId is empty');
    this.mspId = mspId;
    this.config = config;
    if (!config.rootCerts || config.rootCerts.length === 0) throw configInvalid(mspId, 'no root certificates');

    for (const pem of config.rootCerts) {
      const cert = this.#parseConfigCert(pem, 'root certificate');
      if (!cert.isCa) throw configInvalid(mspId, `root certificate ${cert.subject.distinguishedName} is not a CA`);
      if (!isIssuedBy(cert, cert)) {
        throw configInvalid(mspId, `root certificate ${cert.subject.distinguishedName} is not self-signed`);
      }
      this.#cas.push({ cert, parent: undefined, revoked: new Set() });
    }

    // Intermediates may be listed in any order: attach each to an already-trusted CA until none is left.
    let pending = (config.intermediateCerts ?? []).map((pem) => this.#parseConfigCert(pem, 'intermediate certificate'));
    while (pending.length > 0) {
      const next: ParsedCertificate[] = [];
      for (const cert of pending) {
        if (!cert.isCa) {
          throw configInvalid(mspId, `intermediate certificate ${cert.subject.distinguishedName} is not a CA`);
        }
        const parent = this.#cas.find((ca) => ca.cert.id !== cert.id && isIssuedBy(cert, ca.cert));
        if (parent) this.#cas.push({ cert, parent, revoked: new Set() });
        else next.push(cert);
      }
      if (next.length === pending.length) {
        throw configInvalid(
          mspId,
          `intermediate certificate ${next[0]!.subject.distinguishedName} does not chain to a root of this MSP`,
        );
      }
      pending = next;
    }

    for (const pem of config.revocationList ?? []) {
      const crl = parseCrl(pem);
      const issuer = this.#cas.find(
        (ca) => bytesEqual(ca.cert.subjectDer, crl.issuerDer) && crl.verifiedBy(ca.cert.publicKey),
      );
      if (!issuer) throw configInvalid(mspId, 'a CRL is not signed by any CA of this MSP');
      for (const s of crl.revokedSerials) issuer.revoked.add(s);
    }

    for (const pem of config.admins ?? []) this.#adminIds.add(this.#parseConfigCert(pem, 'admin certificate').id);

    const ous = config.nodeOUs;
    if (ous?.enable) {
      this.#roleByOu = new Map<string, NodeRole>();
      const entries: [string, NodeRole][] = [
        [ous.clientOU ?? 'client', 'client'],
        [ous.peerOU ?? 'peer', 'peer'],
        [ous.ordererOU ?? 'orderer', 'orderer'],
        [ous.adminOU ?? 'admin', 'admin'],
      ];
      for (const [ou, role] of entries) {
        if (this.#roleByOu.has(ou)) throw configInvalid(mspId, `NodeOU ${ou} is used for two roles`);
        this.#roleByOu.set(ou, role);
      }
    }
  }

  #parseConfigCert(pem: string, what: string): ParsedCertificate {
    try {
      return parseCertificate(pem);
    } catch (e) {
      throw configInvalid(this.mspId, `${what}: ${(e as Error).message}`);
    }
  }

  validate(cert: string | Uint8Array, now: Date): ValidatedIdentity {
    return this.validateDetailed(parseCertificate(cert), now).identity;
  }

  /** Validation on an already parsed certificate; `idBytes` is kept as the identity's serialized form. */
  validateDetailed(cert: ParsedCertificate, now: Date, idBytes?: Uint8Array): ValidationResult {
    const mspId = this.mspId;
    const details = { mspId, subject: cert.subject.distinguishedName, serialNumber: cert.serialNumber };
    if (cert.isCa) {
      throw mspError(MspErrorCode.CERT_IS_CA, `a CA certificate cannot be a member identity of ${mspId}`, 401, details);
    }

    const issuer = this.#cas.find((ca) => isIssuedBy(cert, ca.cert));
    if (!issuer) {
      throw mspError(MspErrorCode.CERT_WRONG_CA, `certificate was not issued by a CA of ${mspId}`, 401, details);
    }

    const chain: ParsedCertificate[] = [cert];
    for (let ca: CaNode | undefined = issuer; ca; ca = ca.parent) chain.push(ca.cert);

    const t = now.getTime();
    let validFrom = chain[0]!.notBefore;
    let validUntil = chain[0]!.notAfter;
    for (const c of chain) {
      const which = c === cert ? 'certificate' : `CA certificate ${c.subject.distinguishedName}`;
      if (t < c.notBefore.getTime()) {
        throw mspError(
          MspErrorCode.CERT_NOT_YET_VALID,
          `${which} is not valid before ${c.notBefore.toISOString()}`,
          401,
          {
            ...details,
            notBefore: c.notBefore.toISOString(),
          },
        );
      }
      if (t > c.notAfter.getTime()) {
        throw mspError(MspErrorCode.CERT_EXPIRED, `${which} expired at ${c.notAfter.toISOString()}`, 401, {
          ...details,
          notAfter: c.notAfter.toISOString(),
        });
      }
      if (c.notBefore > validFrom) validFrom = c.notBefore;
      if (c.notAfter < validUntil) validUntil = c.notAfter;
    }

    let child = cert;
    for (let ca: CaNode | undefined = issuer; ca; ca = ca.parent) {
      if (ca.revoked.has(child.serialNumber)) {
        const which = child === cert ? 'certificate' : `CA certificate ${child.subject.distinguishedName}`;
        throw mspError(MspErrorCode.CERT_REVOKED, `${which} has been revoked`, 401, {
          ...details,
          revokedSerial: child.serialNumber,
        });
      }
      child = ca.cert;
    }

    let role: NodeRole | undefined;
    if (this.#roleByOu) {
      const roles = new Set<NodeRole>();
      for (const ou of cert.subject.organizationalUnits) {
        const r = this.#roleByOu.get(ou);
        if (r) roles.add(r);
      }
      if (roles.size !== 1) {
        throw mspError(
          MspErrorCode.WRONG_ROLE,
          roles.size === 0
            ? `certificate carries no NodeOU role (client, peer, orderer, admin) of ${mspId}`
            : `certificate carries more than one NodeOU role (${[...roles].join(', ')})`,
          403,
          { ...details, organizationalUnits: cert.subject.organizationalUnits },
        );
      }
      role = [...roles][0];
    }

    const isAdmin = role === 'admin' || this.#adminIds.has(cert.id);
    return { identity: new MemberIdentity(mspId, cert, role, isAdmin, idBytes), validFrom, validUntil };
  }
}

export function createMsp(config: MspConfig): Msp {
  return new OrgMsp(config);
}
