/** Test certificates made with @peculiar/x509: a CA and a user certificate carrying Fabric CA attributes. */
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface TestCert {
  pem: string;
  subject: string;
  issuer: string;
}

export async function makeUserCert(attrs: Record<string, string> | null): Promise<TestCert> {
  const caKeys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const userKeys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const issuer = 'C=US, ST=North Carolina, O=org1.example.com, CN=ca.org1.example.com';
  const subject = 'C=US, ST=North Carolina, O=Hyperledger, OU=client, CN=user1';
  const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(false, undefined, true)];
  if (attrs !== null) {
    const json = new TextEncoder().encode(JSON.stringify({ attrs }));
    extensions.push(new x509.Extension('1.2.3.4.5.6.7.8.1', false, json));
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '01',
    subject,
    issuer,
    notBefore: new Date('2024-01-01T00:00:00Z'),
    notAfter: new Date('2034-01-01T00:00:00Z'),
    signingAlgorithm: alg,
    publicKey: userKeys.publicKey as never,
    signingKey: caKeys.privateKey as never,
    extensions,
  });
  return { pem: cert.toString('pem'), subject, issuer };
}
