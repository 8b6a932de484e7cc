/**
 * The CA's signing material and the certificates and CRLs it makes. @peculiar/x509 builds the
 * ASN.1 (certificates, PKCS#10 parsing, CRLs); keys are P-256 WebCrypto keys from node:crypto.
 * Key files are PKCS#8 PEM written with mode 0600.
 */
import { createPrivateKey, createPublicKey, type KeyObject, webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { P256_HALF_N, P256_N } from '@loom/common/crypto/signature-der';
import { publicKeyFromDer } from '@loom/common/crypto/signing';
import { FABRIC_ATTRS_OID } from '@loom/common/msp/certificate';
import { x509 } from '@loom/common/msp/x509';
import { CaErrorCode, caError } from '../errors.js';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
/** Certificates start slightly in the past, as Fabric CA's do, so a peer whose clock lags still accepts them. */
const BACKDATE_MS = 5 * MINUTE;

type CryptoKeyPair = webcrypto.CryptoKeyPair;

/**
 * node:crypto's WebCrypto with ECDSA signatures normalised to low-S, as Loom's (and Fabric's) MSPs
 * expect of every signature, certificates and CRLs included. WebCrypto returns r‖s (IEEE P1363),
 * which @peculiar/x509 then DER-encodes.
 */
const lowSCrypto = (() => {
  const subtle = webcrypto.subtle;
  const sign = async (
    alg: Parameters<typeof subtle.sign>[0],
    key: webcrypto.CryptoKey,
    data: Parameters<typeof subtle.sign>[2],
  ) => {
    const sig = new Uint8Array(await subtle.sign(alg, key, data));
    if (key.algorithm.name !== 'ECDSA' || sig.length !== 64) return sig.buffer;
    const s = BigInt(`0x${Buffer.from(sig.subarray(32)).toString('hex')}`);
    if (s <= P256_HALF_N) return sig.buffer;
    const lowS = Buffer.from((P256_N - s).toString(16).padStart(64, '0'), 'hex');
    const out = new Uint8Array(64);
    out.set(sig.subarray(0, 32), 0);
    out.set(lowS, 32);
    return out.buffer;
  };
  const proxiedSubtle = new Proxy(subtle, {
    get(target, prop) {
      if (prop === 'sign') return sign;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return {
    subtle: proxiedSubtle,
    getRandomValues: webcrypto.getRandomValues.bind(webcrypto),
    randomUUID: webcrypto.randomUUID.bind(webcrypto),
  } as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];
})();

export interface SubjectSpec {
  readonly cn: string;
  /** Fabric CA's `csr.names`: C, ST, L, O, OU. */
  readonly names?: ReadonlyArray<Readonly<Record<string, string>>>;
}

/** A CA that can sign: its certificate and key. */
export interface CaSigner {
  readonly certPem: string;
  readonly cert: x509.X509Certificate;
  readonly nodeCert: NodeX509;
  readonly publicKey: KeyObject;
  readonly keys: CryptoKeyPair;
  /** Lowercase hex subject key identifier: the AKI of everything it issues. */
  readonly ski: string;
}

export function randomSerial(): string {
  const b = new Uint8Array(20);
  webcrypto.getRandomValues(b);
  b[0] = (b[0]! & 0x7f) | 0x01; // positive and no leading zero byte: one spelling everywhere
  return Buffer.from(b).toString('hex');
}

function jsonName(subject: SubjectSpec, ous: readonly string[] = []): x509.JsonName {
  const out: x509.JsonName = [];
  for (const n of subject.names ?? []) {
    for (const key of ['C', 'ST', 'L', 'O'] as const) {
      const v = n[key];
      if (v) out.push({ [key]: [v] });
    }
  }
  for (const ou of ous) out.push({ OU: [ou] });
  out.push({ CN: [subject.cn] });
  return out;
}

async function exportKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

async function importKeyPair(keyPem: string): Promise<CryptoKeyPair> {
  const der = x509.PemConverter.decodeFirst(keyPem);
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der, ALG, true, ['sign']);
  const spki = createPublicKey(createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' })).export({
    type: 'spki',
    format: 'der',
  });
  const publicKey = await webcrypto.subtle.importKey('spki', spki, ALG, true, ['verify']);
  return { privateKey, publicKey };
}

async function writeAtomically(file: string, text: string, mode: number): Promise<void> {
  const tmp = `${file}.tmp`;
  await writeFile(tmp, text, { mode });
  await chmod(tmp, mode);
  await rename(tmp, file);
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function toSigner(certPem: string, keys: CryptoKeyPair): Promise<CaSigner> {
  const cert = new x509.X509Certificate(certPem);
  const nodeCert = new NodeX509(certPem);
  const skiExt = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const ski = skiExt?.keyId ?? Buffer.from(await cert.publicKey.getKeyIdentifier()).toString('hex');
  return { certPem, cert, nodeCert, publicKey: nodeCert.publicKey, keys, ski: ski.toLowerCase() };
}

/**
 * Loads `<dir>/<prefix>-cert.pem` and `<dir>/<prefix>-key.pem`, or creates a self-signed P-256 CA
 * there. The key file is written first, so a crash never leaves a certificate without its key.
 */
export async function loadOrCreateRootCa(
  dir: string,
  prefix: string,
  subject: SubjectSpec,
  now: Date,
): Promise<CaSigner> {
  const certFile = join(dir, `${prefix}-cert.pem`);
  const keyFile = join(dir, `${prefix}-key.pem`);
  const [certPem, keyPem] = await Promise.all([readIfExists(certFile), readIfExists(keyFile)]);
  if (certPem && keyPem) return toSigner(certPem, await importKeyPair(keyPem));

  await mkdir(dir, { recursive: true, mode: 0o700 });
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial(),
      name: jsonName(subject),
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + 15 * 365 * DAY),
      keys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 1, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    },
    lowSCrypto,
  );
  const pem = cert.toString('pem');
  await writeAtomically(keyFile, await exportKeyPem(keys.privateKey), 0o600);
  await writeAtomically(certFile, pem, 0o644);
  return toSigner(pem, keys);
}

/** A parsed, signature-checked PKCS#10 request. */
export interface CheckedCsr {
  readonly csr: x509.Pkcs10CertificateRequest;
  readonly publicKey: KeyObject;
  readonly subjectNames: readonly x509.JsonName[number][];
  readonly sans: x509.JsonGeneralNames;
}

export async function checkCsr(pem: unknown): Promise<CheckedCsr> {
  if (typeof pem !== 'string' || !pem.includes('-----BEGIN CERTIFICATE REQUEST-----')) {
    throw caError(CaErrorCode.CSR_INVALID, 'certificate_request must be a PEM PKCS#10 certificate request');
  }
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch (e) {
    throw caError(CaErrorCode.CSR_INVALID, `malformed certificate request: ${(e as Error).message}`);
  }
  let publicKey: KeyObject;
  try {
    publicKey = publicKeyFromDer(new Uint8Array(csr.publicKey.rawData));
  } catch (e) {
    throw caError(CaErrorCode.CSR_INVALID, `certificate request key: ${(e as Error).message}`);
  }
  let ok = false;
  try {
    ok = await csr.verify();
  } catch {
    ok = false;
  }
  // Proof of possession: only the holder of the private key can have signed the request.
  if (!ok) throw caError(CaErrorCode.CSR_INVALID, 'certificate request signature does not verify');
  let sans: x509.JsonGeneralNames = [];
  const sanExt = csr.getExtension('2.5.29.17');
  if (sanExt) {
    try {
      sans = new x509.SubjectAlternativeNameExtension(sanExt.rawData).names.toJSON();
    } catch (e) {
      throw caError(CaErrorCode.CSR_INVALID, `certificate request SAN: ${(e as Error).message}`);
    }
  }
  return { csr, publicKey, subjectNames: csr.subjectName.toJSON(), sans };
}

export function hostsToSans(hosts: readonly string[]): x509.JsonGeneralNames {
  return hosts.map((h) => ({ type: isIP(h) ? 'ip' : 'dns', value: h }));
}

export interface IssueOptions {
  readonly csr: CheckedCsr;
  readonly enrollmentId: string;
  readonly profile: 'ecert' | 'tls';
  /** Subject OUs dictated by the CA: the NodeOU role, then the affiliation's parts. */
  readonly ous: readonly string[];
  readonly attrs?: Readonly<Record<string, string>>;
  readonly extraSans?: x509.JsonGeneralNames;
  readonly now: Date;
  readonly validityDays?: number;
}

export interface IssuedCertificate {
  readonly pem: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export async function issueCertificate(ca: CaSigner, o: IssueOptions): Promise<IssuedCertificate> {
  // The CA decides CN (the enrollment ID, as Fabric CA does) and OU (role and affiliation); the
  // requester may only propose C, ST, L and O.
  const subject: x509.JsonName = [];
  for (const rdn of o.csr.subjectNames) {
    for (const [k, v] of Object.entries(rdn)) {
      if (['C', 'ST', 'L', 'O'].includes(k)) subject.push({ [k]: v });
    }
  }
  for (const ou of o.ous) subject.push({ OU: [ou] });
  subject.push({ CN: [o.enrollmentId] });

  const serialNumber = randomSerial();
  const notBefore = new Date(o.now.getTime() - BACKDATE_MS);
  const notAfter = new Date(Math.min(o.now.getTime() + (o.validityDays ?? 365) * DAY, ca.cert.notAfter.getTime()));
  const spki = o.csr.publicKey.export({ type: 'spki', format: 'der' });
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    await x509.SubjectKeyIdentifierExtension.create(o.csr.csr.publicKey),
    new x509.AuthorityKeyIdentifierExtension(ca.ski),
  ];
  if (o.profile === 'tls') {
    extensions.push(
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    );
  } else {
    extensions.push(new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true));
  }
  const sans = dedupeSans([...o.csr.sans, ...(o.extraSans ?? [])]);
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans, false));
  if (o.attrs && Object.keys(o.attrs).length > 0) {
    const json = JSON.stringify({ attrs: o.attrs });
    extensions.push(new x509.Extension(FABRIC_ATTRS_OID, false, new TextEncoder().encode(json)));
  }
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber,
      subject,
      issuer: ca.cert.subjectName,
      notBefore,
      notAfter,
      publicKey: new x509.PublicKey(spki),
      signingKey: ca.keys.privateKey,
      signingAlgorithm: ALG,
      extensions,
    },
    lowSCrypto,
  );
  return { pem: cert.toString('pem'), serial: normalizeHex(serialNumber), notBefore, notAfter };
}

function dedupeSans(sans: x509.JsonGeneralNames): x509.JsonGeneralNames {
  const seen = new Set<string>();
  return sans.filter((s) => {
    const k = `${s.type}:${s.value}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Lowercase hex with leading zeros removed: how the MSP and the store spell serials. */
export function normalizeHex(hex: string): string {
  const t = hex.toLowerCase().replace(/^0+/, '');
  return t === '' ? '0' : t;
}

export async function createCrl(
  ca: CaSigner,
  entries: ReadonlyArray<{ serial: string; revokedAt: Date }>,
  now: Date,
): Promise<string> {
  const crl = await x509.X509CrlGenerator.create(
    {
      issuer: ca.cert.subjectName,
      thisUpdate: now,
      nextUpdate: new Date(now.getTime() + 7 * DAY),
      signingAlgorithm: ALG,
      signingKey: ca.keys.privateKey,
      extensions: [new x509.AuthorityKeyIdentifierExtension(ca.ski)],
      entries: entries.map((e) => ({
        // DER INTEGERs: an odd-length or high-bit serial needs a leading zero to stay positive.
        serialNumber: padSerial(e.serial),
        revocationDate: e.revokedAt,
      })),
    },
    lowSCrypto,
  );
  // RFC 7468's label, which Fabric and OpenSSL write; @peculiar/x509 writes plain "CRL".
  return x509.PemConverter.encode(crl.rawData, 'X509 CRL');
}

function padSerial(hex: string): string {
  let h = hex.length % 2 === 1 ? `0${hex}` : hex;
  if (Number.parseInt(h.slice(0, 2), 16) >= 0x80) h = `00${h}`;
  return h;
}

/**
 * The certificate the CA's own listener presents, issued by the TLS CA for `hosts`. Reused across
 * restarts while it covers the same hosts.
 */
export async function loadOrCreateServerTls(
  dir: string,
  tlsCa: CaSigner,
  cn: string,
  hosts: readonly string[],
  now: Date,
): Promise<{ certPem: string; keyPem: string }> {
  const certFile = join(dir, 'tls-cert.pem');
  const keyFile = join(dir, 'tls-key.pem');
  const hostsFile = join(dir, 'tls-hosts.json');
  const [certPem, keyPem, hostsJson] = await Promise.all([
    readIfExists(certFile),
    readIfExists(keyFile),
    readIfExists(hostsFile),
  ]);
  const wanted = JSON.stringify([...new Set(hosts)].sort());
  if (certPem && keyPem && hostsJson === wanted) {
    const existing = new NodeX509(certPem);
    if (new Date(existing.validTo).getTime() > now.getTime() + DAY && existing.checkIssued(tlsCa.nodeCert)) {
      return { certPem, keyPem };
    }
  }
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [cn] }],
    keys,
    signingAlgorithm: ALG,
  });
  const checked = await checkCsr(csr.toString('pem'));
  const issued = await issueCertificate(tlsCa, {
    csr: checked,
    enrollmentId: cn,
    profile: 'tls',
    ous: [],
    extraSans: hostsToSans(JSON.parse(wanted) as string[]),
    now,
  });
  const newKeyPem = await exportKeyPem(keys.privateKey);
  await writeAtomically(keyFile, newKeyPem, 0o600);
  await writeAtomically(certFile, issued.pem, 0o644);
  await writeAtomically(hostsFile, wanted, 0o644);
  return { certPem: issued.pem, keyPem: newKeyPem };
}
