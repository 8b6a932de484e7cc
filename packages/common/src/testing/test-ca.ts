/**
 * Real certificate material for tests: an ECDSA P-256 root CA made with @peculiar/x509, intermediates,
 * member certificates with the role in the subject OU (as Fabric CA issues them), Fabric CA attribute
 * extensions, and CRLs signed by the issuing CA. Every package's tests build identities from here.
 */
import { createPublicKey, type KeyObject, webcrypto } from 'node:crypto';
import { privateKeyFromPem, signerFromKey } from '../crypto/signing.js';
import type { Signer } from '../crypto/signer.js';
import type { NodeRole } from '../identity-types.js';
import { FABRIC_ATTRS_OID, normalizeSerial } from '../msp/certificate.js';
import type { MspConfig, SerializedIdentity } from '../msp/types.js';
import { x509 } from '../msp/x509.js';

type WebCryptoKeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const HOUR = 3_600_000;
const YEAR = 365 * 24 * HOUR;

export interface TestIdentity {
  readonly mspId: string;
  readonly cn: string;
  readonly role: NodeRole | undefined;
  readonly certPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** Lowercase hex without leading zeros, as ValidatedIdentity.serialNumber and CRLs use it. */
  readonly serial: string;
  readonly signer: Signer;
  /** `{ mspId, idBytes: UTF-8 of certPem }`, ready for MspManager.deserialize. */
  readonly serialized: SerializedIdentity;
}

export interface IssueOptions {
  readonly cn: string;
  /** The role OU. Omit to issue a certificate without any role OU. */
  readonly role?: NodeRole;
  /** Extra OUs (Fabric CA adds affiliation OUs such as `org1`, `department1`). */
  readonly ous?: readonly string[];
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** Written into the Fabric CA attribute extension (1.2.3.4.5.6.7.8.1). */
  readonly attrs?: Readonly<Record<string, string>>;
  /** Issue from this intermediate instead of the CA `issue` was called on. */
  readonly intermediate?: TestCa;
}

export interface TestCaOptions {
  readonly mspId: string;
  readonly name?: string;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

export interface TestCa {
  readonly mspId: string;
  readonly name: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly privateKey: KeyObject;
  readonly serial: string;
  /** True for an intermediate made by `createIntermediate`. */
  readonly isIntermediate: boolean;
  issue(options: IssueOptions): Promise<TestIdentity>;
  createIntermediate(options?: { name?: string; notBefore?: Date; notAfter?: Date }): Promise<TestCa>;
  /** A PEM CRL listing `revokedSerials`, signed by this CA. */
  crl(revokedSerials: readonly string[], options?: { thisUpdate?: Date; nextUpdate?: Date }): Promise<string>;
  /**
   * The MSP of the whole hierarchy (root, every intermediate created so far) with NodeOUs enabled.
   * `overrides` replace fields, e.g. `{ revocationList: [await ca.crl([serial])] }`.
   */
  mspConfig(overrides?: Partial<MspConfig>): MspConfig;
}

function randomSerial(): string {
  const b = new Uint8Array(16);
  webcrypto.getRandomValues(b);
  b[0] = (b[0]! & 0x7f) | 0x01; // positive, no leading zero byte
  return Buffer.from(b).toString('hex');
}

async function generateKeys(): Promise<WebCryptoKeyPair> {
  return (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as WebCryptoKeyPair;
}

async function exportPkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
  const der = new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', key));
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

function subjectName(org: string, ous: readonly string[], cn: string): x509.JsonName {
  return [{ C: ['US'] }, { O: [org] }, ...ous.map((ou) => ({ OU: [ou] })), { CN: [cn] }];
}

/** Shared by a root and all its intermediates, so any of them can describe the whole MSP. */
interface CaState {
  readonly mspId: string;
  rootPem: string;
  readonly intermediates: string[];
}

class TestCaImpl implements TestCa {
  readonly mspId: string;
  readonly name: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly privateKey: KeyObject;
  readonly serial: string;
  readonly isIntermediate: boolean;
  readonly #cert: x509.X509Certificate;
  readonly #keys: WebCryptoKeyPair;
  readonly #state: CaState;

  constructor(
    name: string,
    cert: x509.X509Certificate,
    keys: WebCryptoKeyPair,
    keyPem: string,
    state: CaState,
    isIntermediate: boolean,
  ) {
    this.mspId = state.mspId;
    this.name = name;
    this.#cert = cert;
    this.#keys = keys;
    this.#state = state;
    this.certPem = cert.toString('pem');
    this.keyPem = keyPem;
    this.privateKey = privateKeyFromPem(keyPem);
    this.serial = normalizeSerial(cert.serialNumber);
    this.isIntermediate = isIntermediate;
  }

  async issue(options: IssueOptions): Promise<TestIdentity> {
    if (options.intermediate) return options.intermediate.issue({ ...options, intermediate: undefined });
    const keys = await generateKeys();
    const now = Date.now();
    const serialNumber = randomSerial();
    const ous = [...(options.role ? [options.role] : []), ...(options.ous ?? [])];
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(this.#keys.publicKey),
    ];
    if (options.attrs) {
      const json = JSON.stringify({ attrs: options.attrs });
      extensions.push(new x509.Extension(FABRIC_ATTRS_OID, false, new TextEncoder().encode(json)));
    }
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber,
      subject: subjectName(this.mspId, ous, options.cn),
      issuer: this.#cert.subjectName,
      notBefore: options.notBefore ?? new Date(now - HOUR),
      notAfter: options.notAfter ?? new Date(now + YEAR),
      publicKey: keys.publicKey,
      signingKey: this.#keys.privateKey,
      signingAlgorithm: ALG,
      extensions,
    });
    const keyPem = await exportPkcs8Pem(keys.privateKey);
    const privateKey = privateKeyFromPem(keyPem);
    const certPem = cert.toString('pem');
    return {
      mspId: this.mspId,
      cn: options.cn,
      role: options.role,
      certPem,
      keyPem,
      privateKey,
      publicKey: createPublicKey(privateKey),
      serial: normalizeSerial(serialNumber),
      signer: signerFromKey(privateKey),
      serialized: { mspId: this.mspId, idBytes: new TextEncoder().encode(certPem) },
    };
  }

  async createIntermediate(options: { name?: string; notBefore?: Date; notAfter?: Date } = {}): Promise<TestCa> {
    const keys = await generateKeys();
    const now = Date.now();
    const name = options.name ?? `ica${this.#state.intermediates.length + 1}.${this.name}`;
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: subjectName(this.mspId, [], name),
      issuer: this.#cert.subjectName,
      notBefore: options.notBefore ?? new Date(now - HOUR),
      notAfter: options.notAfter ?? new Date(now + 5 * YEAR),
      publicKey: keys.publicKey,
      signingKey: this.#keys.privateKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(this.#keys.publicKey),
      ],
    });
    const ica = new TestCaImpl(name, cert, keys, await exportPkcs8Pem(keys.privateKey), this.#state, true);
    this.#state.intermediates.push(ica.certPem);
    return ica;
  }

  async crl(
    revokedSerials: readonly string[],
    options: { thisUpdate?: Date; nextUpdate?: Date } = {},
  ): Promise<string> {
    const now = Date.now();
    const crl = await x509.X509CrlGenerator.create({
      issuer: this.#cert.subjectName,
      thisUpdate: options.thisUpdate ?? new Date(now - HOUR),
      nextUpdate: options.nextUpdate ?? new Date(now + 30 * 24 * HOUR),
      entries: revokedSerials.map((serialNumber) => ({ serialNumber, revocationDate: new Date(now - HOUR) })),
      signingAlgorithm: ALG,
      signingKey: this.#keys.privateKey,
    });
    // The label OpenSSL and Fabric CA use.
    return x509.PemConverter.encode(crl.rawData, 'X509 CRL');
  }

  mspConfig(overrides: Partial<MspConfig> = {}): MspConfig {
    return {
      mspId: this.mspId,
      rootCerts: [this.#state.rootPem],
      ...(this.#state.intermediates.length ? { intermediateCerts: [...this.#state.intermediates] } : {}),
      nodeOUs: { enable: true },
      ...overrides,
    };
  }
}

/** A self-signed ECDSA P-256 root CA for `mspId`. */
export async function createTestCa(options: TestCaOptions): Promise<TestCa> {
  const keys = await generateKeys();
  const now = Date.now();
  const name = options.name ?? `ca.${options.mspId.toLowerCase()}`;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: subjectName(options.mspId, [], name),
    notBefore: options.notBefore ?? new Date(now - HOUR),
    notAfter: options.notAfter ?? new Date(now + 10 * YEAR),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const state: CaState = { mspId: options.mspId, rootPem: cert.toString('pem'), intermediates: [] };
  return new TestCaImpl(name, cert, keys, await exportPkcs8Pem(keys.privateKey), state, false);
}

export interface TestOrg {
  readonly mspId: string;
  readonly ca: TestCa;
  readonly admin: TestIdentity;
  readonly peer: TestIdentity;
  readonly orderer: TestIdentity;
  readonly client: TestIdentity;
  mspConfig(overrides?: Partial<MspConfig>): MspConfig;
}

/** A root CA plus one admin, peer, orderer and client identity, NodeOUs enabled. */
export async function createTestOrg(mspId: string): Promise<TestOrg> {
  const ca = await createTestCa({ mspId });
  const domain = mspId.replace(/MSP$/i, '').toLowerCase();
  const [admin, peer, orderer, client] = await Promise.all([
    ca.issue({ cn: `Admin@${domain}.example.com`, role: 'admin' }),
    ca.issue({ cn: `peer0.${domain}.example.com`, role: 'peer' }),
    ca.issue({ cn: `orderer0.${domain}.example.com`, role: 'orderer' }),
    ca.issue({ cn: `User1@${domain}.example.com`, role: 'client' }),
  ]);
  return { mspId, ca, admin, peer, orderer, client, mspConfig: (o) => ca.mspConfig(o) };
}
