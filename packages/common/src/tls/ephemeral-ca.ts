/**
 * A short-lived TLS CA a peer makes for itself at start, as Fabric's peer does for chaincode: it
 * issues the chaincode listener's server certificate and one client certificate per launched
 * chaincode process, so only processes this peer started can connect to its chaincode port. The
 * CA's key never leaves the process and nothing else trusts it; a restart makes a new one.
 */
import { isIP } from 'node:net';
import { webcrypto } from 'node:crypto';
import { x509 } from '../msp/x509.js';
import { normalizeHexSerial } from './material.js';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface EphemeralTlsPair {
  readonly certPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
  readonly serial: string;
}

export interface EphemeralTlsCa {
  /** The root to trust (chaincode processes trust it for the server, the listener for clients). */
  readonly certPem: string;
  /** A server certificate for `hosts` (DNS names or IP addresses). */
  issueServer(cn: string, hosts: readonly string[]): Promise<EphemeralTlsPair>;
  /** A client certificate naming `cn` (a chaincode package id). */
  issueClient(cn: string): Promise<EphemeralTlsPair>;
}

function randomSerial(): string {
  const b = new Uint8Array(16);
  webcrypto.getRandomValues(b);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return Buffer.from(b).toString('hex');
}

const pkcs8 = async (k: webcrypto.CryptoKey) =>
  x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', k), 'PRIVATE KEY');

/** Makes a CA valid for `validityDays` (default 365: longer than any peer runs without restart is not needed, but harmless). */
export async function createEphemeralTlsCa(
  name: string,
  options: { validityDays?: number } = {},
): Promise<EphemeralTlsCa> {
  const validity = (options.validityDays ?? 365) * DAY;
  const caKeys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${name}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + validity),
    keys: caKeys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  const issue = async (cn: string, usage: 'server' | 'client', hosts: readonly string[]): Promise<EphemeralTlsPair> => {
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const serialNumber = randomSerial();
    const t = Date.now();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber,
      subject: `CN=${cn.replace(/[,+="\\<>;#]/g, '_')}`,
      issuer: caCert.subjectName,
      notBefore: new Date(t - 60_000),
      notAfter: new Date(Math.min(t + validity, caCert.notAfter.getTime())),
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([
          usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
        ]),
        ...(hosts.length > 0
          ? [new x509.SubjectAlternativeNameExtension(hosts.map((h) => ({ type: isIP(h) ? 'ip' : 'dns', value: h })))]
          : []),
        await x509.AuthorityKeyIdentifierExtension.create(caCert),
      ],
    });
    return {
      certPem: cert.toString('pem'),
      keyPem: await pkcs8(keys.privateKey),
      serial: normalizeHexSerial(serialNumber),
    };
  };

  return {
    certPem: caCert.toString('pem'),
    issueServer: (cn, hosts) => issue(cn, 'server', hosts),
    issueClient: (cn) => issue(cn, 'client', []),
  };
}
