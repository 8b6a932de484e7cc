import { X509Certificate as NodeX509 } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { isLoomError } from '../errors.js';
import { createTestCa, type TestCa } from '../testing/test-ca.js';
import { x509 } from './x509.js';
import { isIssuedBy, normalizeSerial, parseCertificate } from './certificate.js';
import { MspErrorCode } from './types.js';

describe('parseCertificate', () => {
  let ca: TestCa;
  beforeAll(async () => {
    ca = await createTestCa({ mspId: 'ParseMSP' });
  });

  it('reads the same fields as @peculiar/x509 and node:crypto', async () => {
    const ica = await ca.createIntermediate();
    const leaf = await ica.issue({
      cn: 'user, one+two',
      role: 'client',
      ous: ['org1', 'department1'],
      attrs: { a: '1', 'hf.Type': 'client' },
      notBefore: new Date('2026-01-02T03:04:05Z'),
      notAfter: new Date('2051-01-02T03:04:05Z'),
    });
    for (const pem of [ca.certPem, ica.certPem, leaf.certPem]) {
      const ours = parseCertificate(pem);
      const px = new x509.X509Certificate(pem);
      const node = new NodeX509(pem);
      expect(ours.serialNumber).toBe(normalizeSerial(px.serialNumber));
      expect(ours.notBefore.getTime()).toBe(px.notBefore.getTime());
      expect(ours.notAfter.getTime()).toBe(px.notAfter.getTime());
      expect(ours.subject.commonName).toBe(px.subjectName.getField('CN')[0]);
      expect(ours.subject.organizationalUnits).toEqual(px.subjectName.getField('OU'));
      expect(ours.subject.organizations).toEqual(px.subjectName.getField('O'));
      expect(ours.isCa).toBe(node.ca);
      expect(ours.publicKey.equals(node.publicKey)).toBe(true);
    }
    const parsed = parseCertificate(leaf.certPem);
    expect(parsed.notAfter.toISOString()).toBe('2051-01-02T03:04:05.000Z'); // GeneralizedTime after 2049
    expect(parsed.subject.distinguishedName).toBe(
      'C=US, O=ParseMSP, OU=client, OU=org1, OU=department1, CN=user\\, one\\+two',
    );
    expect(parsed.attributes).toEqual({ a: '1', 'hf.Type': 'client' });
    expect(isIssuedBy(parsed, parseCertificate(ica.certPem))).toBe(true);
    expect(isIssuedBy(parsed, parseCertificate(ca.certPem))).toBe(false);
  });

  it('rejects tampered and truncated certificates as MSP_CERT_MALFORMED', async () => {
    const leaf = await ca.issue({ cn: 'x', role: 'peer' });
    const der = parseCertificate(leaf.certPem).der;
    const code = (input: Uint8Array) => {
      try {
        parseCertificate(input);
      } catch (e) {
        return isLoomError(e) ? e.code : 'other';
      }
      return 'accepted';
    };
    expect(code(der.subarray(0, der.length - 1))).toBe(MspErrorCode.CERT_MALFORMED);
    expect(code(new Uint8Array([...der, 0]))).toBe(MspErrorCode.CERT_MALFORMED);
    // A flipped byte inside the signed part parses but no longer verifies under the issuer.
    const flipped = der.slice();
    const cnAt = Buffer.from(flipped).indexOf(Buffer.from('x'), 150);
    flipped[cnAt] = 'y'.charCodeAt(0);
    expect(isIssuedBy(parseCertificate(flipped), parseCertificate(ca.certPem))).toBe(false);
  });
});
