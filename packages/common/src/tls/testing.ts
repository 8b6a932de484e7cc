/**
 * TLS certificate material for tests: a per-org TLS CA (its root made by common's `createTestCa`)
 * issuing server and client certificates with the subject alternative names a TLS listener on
 * loopback needs, as Fabric's TLS CA issues them (serverAuth + clientAuth). Tests only.
 */
import { webcrypto } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { normalizeSerial } from '../msp/certificate.js';
import { x509 } from '../msp/x509.js';
import { createTestCa, type TestCa } from '../testing/test-ca.js';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const HOUR = 3_600_000;

export interface TestTlsCertificate {
  readonly certPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
  /** Lowercase hex without leading zeros. */
  readonly serial: string;
}

export interface TestTlsIssueOptions {
  readonly cn: string;
  /** DNS names and IP addresses for the SAN; default `localhost` and `127.0.0.1`. */
  readonly hosts?: readonly string[];
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

export interface TestTlsCa {
  readonly name: string;
  /** The TLS CA root, as it goes into an MSP's `tlscacerts/`. */
  readonly certPem: string;
  readonly ca: TestCa;
  issue(options: TestTlsIssueOptions): Promise<TestTlsCertificate>;
}

function randomSerial(): string {
  const b = new Uint8Array(16);
  webcrypto.getRandomValues(b);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return Buffer.from(b).toString('hex');
}

/** A TLS CA for `mspId` (named `tlsca.<org>`). */
export async function createTestTlsCa(
  mspId: string,
  options: { notBefore?: Date; notAfter?: Date } = {},
): Promise<TestTlsCa> {
  const name = `tlsca.${mspId.replace(/MSP$/i, '').toLowerCase()}`;
  const ca = await createTestCa({ mspId, name, ...options });
  const caCert = new x509.X509Certificate(ca.certPem);
  const signingKey = await webcrypto.subtle.importKey(
    'pkcs8',
    x509.PemConverter.decodeFirst(ca.keyPem),
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['sign'],
  );
  return {
    name,
    certPem: ca.certPem,
    ca,
    async issue(o) {
      const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
        'sign',
        'verify',
      ])) as webcrypto.CryptoKeyPair;
      const now = Date.now();
      const serialNumber = randomSerial();
      const hosts = o.hosts ?? ['localhost', '127.0.0.1'];
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber,
        subject: [{ O: [mspId] }, { CN: [o.cn] }],
        issuer: caCert.subjectName,
        notBefore: o.notBefore ?? new Date(now - HOUR),
        notAfter: o.notAfter ?? new Date(now + 24 * HOUR),
        publicKey: keys.publicKey,
        signingKey,
        signingAlgorithm: ALG,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
          new x509.SubjectAlternativeNameExtension(hosts.map((h) => ({ type: isIP(h) ? 'ip' : 'dns', value: h }))),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
          await x509.AuthorityKeyIdentifierExtension.create(caCert),
        ],
      });
      const keyPem = x509.PemConverter.encode(
        await webcrypto.subtle.exportKey('pkcs8', keys.privateKey),
        'PRIVATE KEY',
      );
      return { certPem: cert.toString('pem'), keyPem, serial: normalizeSerial(serialNumber) };
    },
  };
}

/**
 * Writes `server.crt`, `server.key` and `ca.crt` into `dir` (Fabric's `tls/` folder layout), each by
 * rename so a watcher never reads half a file. Returns the paths.
 */
export async function writeTlsFiles(
  dir: string,
  material: { certPem: string; keyPem: string; caPem?: string },
): Promise<{ certFile: string; keyFile: string; caFile: string }> {
  await mkdir(dir, { recursive: true });
  const paths = { certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key'), caFile: join(dir, 'ca.crt') };
  const put = async (file: string, text: string) => {
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, text, { mode: 0o600 });
    await rename(tmp, file);
  };
  await put(paths.keyFile, material.keyPem);
  await put(paths.certFile, material.certPem);
  if (material.caPem !== undefined) await put(paths.caFile, material.caPem);
  return paths;
}
