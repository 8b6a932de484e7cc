import type { KeyObject } from 'node:crypto';
import type { SignerIdentity } from '../identity-types.js';

/** An identity as it travels: the MSP that vouches for it and the PEM certificate as UTF-8 bytes. */
export interface SerializedIdentity {
  readonly mspId: string;
  readonly idBytes: Uint8Array;
}

/** PEM text (one certificate or CRL per entry). */
export type Pem = string;

export interface NodeOUsConfig {
  readonly enable: boolean;
  /** OU value that marks a client certificate. Default `client`. */
  readonly clientOU?: string;
  readonly peerOU?: string;
  readonly ordererOU?: string;
  readonly adminOU?: string;
}

/** One organization's membership rules, as a channel config or a local MSP folder carries them. */
export interface MspConfig {
  readonly mspId: string;
  readonly rootCerts: readonly Pem[];
  readonly intermediateCerts?: readonly Pem[];
  /** Certificates whose holders are admins regardless of OU. */
  readonly admins?: readonly Pem[];
  /** PEM CRLs, each signed by one of this MSP's CAs. */
  readonly revocationList?: readonly Pem[];
  readonly nodeOUs?: NodeOUsConfig;
  readonly tlsRootCerts?: readonly Pem[];
  readonly tlsIntermediateCerts?: readonly Pem[];
}

export type Clock = () => Date;

export const MspErrorCode = {
  /** The mspId is not one of the channel's (or the manager's) MSPs. */
  UNKNOWN: 'MSP_UNKNOWN',
  /** The certificate does not chain to this MSP's root or intermediate certificates. */
  CERT_WRONG_CA: 'MSP_CERT_WRONG_CA',
  CERT_EXPIRED: 'MSP_CERT_EXPIRED',
  CERT_NOT_YET_VALID: 'MSP_CERT_NOT_YET_VALID',
  /** The certificate (or a CA certificate above it) is listed in a CRL signed by its issuer. */
  CERT_REVOKED: 'MSP_CERT_REVOKED',
  /** NodeOUs are enabled and the certificate carries no recognised role OU, or more than one. */
  WRONG_ROLE: 'MSP_WRONG_ROLE',
  CERT_MALFORMED: 'MSP_CERT_MALFORMED',
  /** A CA certificate (basicConstraints cA=true) presented as a member identity. */
  CERT_IS_CA: 'MSP_CERT_IS_CA',
  /** The MspConfig itself is unusable (no roots, intermediate or CRL that no CA of the MSP issued, ...). */
  CONFIG_INVALID: 'MSP_CONFIG_INVALID',
} as const;

export interface CertificateSubject {
  readonly commonName: string | undefined;
  readonly organizationalUnits: readonly string[];
  readonly organizations: readonly string[];
  /** RFC 4514-style string, e.g. `CN=peer0, OU=peer, O=Org1`. */
  readonly distinguishedName: string;
}

/** A certificate that an MSP accepted at some time, with everything policies and chaincode read from it. */
export interface ValidatedIdentity extends SignerIdentity {
  readonly certPem: string;
  readonly certDer: Uint8Array;
  readonly publicKey: KeyObject;
  readonly subject: CertificateSubject;
  /** Fabric CA attributes (extension 1.2.3.4.5.6.7.8.1), empty when absent. */
  readonly attributes: Readonly<Record<string, string>>;
  /** Lowercase hex, no leading zeros. */
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The bytes this identity travels as; the original bytes when it came from `deserialize`. */
  readonly serialized: SerializedIdentity;
  /** Throws SIGNATURE_INVALID or SIGNATURE_HIGH_S unless `sig` is this identity's low-S signature over `message`. */
  verify(message: Uint8Array, sig: Uint8Array): void;
  /** Boolean form of `verify`. */
  verifies(message: Uint8Array, sig: Uint8Array): boolean;
}
