import { beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../crypto/hash.js';
import { encodeDerSignature, P256_N, parseDerSignature, SignatureErrorCode } from '../crypto/signature-der.js';
import { sign } from '../crypto/signing.js';
import { isLoomError, type LoomError } from '../errors.js';
import { createTestCa, createTestOrg, type TestOrg } from '../testing/test-ca.js';
import { certificateDer } from './certificate.js';
import { createMsp } from './msp.js';
import { MspManager } from './msp-manager.js';
import { MspErrorCode, type SerializedIdentity } from './types.js';

const DAY = 86_400_000;
const msg = new TextEncoder().encode('proposal bytes');

function errorOf(f: () => unknown): LoomError {
  try {
    f();
  } catch (e) {
    if (isLoomError(e)) return e;
    throw e;
  }
  throw new Error('expected a LoomError');
}

const ser = (mspId: string, pem: string): SerializedIdentity => ({ mspId, idBytes: new TextEncoder().encode(pem) });

describe('MSP validation', () => {
  let org1: TestOrg;
  let org2: TestOrg;
  let manager: MspManager;

  beforeAll(async () => {
    [org1, org2] = await Promise.all([createTestOrg('Org1MSP'), createTestOrg('Org2MSP')]);
    manager = new MspManager([org1.mspConfig(), org2.mspConfig()]);
  });

  it('accepts members with their NodeOU role and derives id, subject and serial', () => {
    const peer = manager.deserialize(org1.peer.serialized);
    expect(peer.mspId).toBe('Org1MSP');
    expect(peer.role).toBe('peer');
    expect(peer.isAdmin).toBe(false);
    expect(peer.id).toBe(sha256Hex(certificateDer(org1.peer.certPem)));
    expect(peer.subject.commonName).toBe('peer0.org1.example.com');
    expect(peer.subject.organizationalUnits).toEqual(['peer']);
    expect(peer.serialNumber).toBe(org1.peer.serial);
    expect(peer.serialized.idBytes).toBe(org1.peer.serialized.idBytes);
    expect(manager.deserialize(org2.orderer.serialized).role).toBe('orderer');
    expect(manager.deserialize(org2.client.serialized).role).toBe('client');
  });

  it('recognises admins by the admin OU and by admincerts', () => {
    const admin = manager.deserialize(org1.admin.serialized);
    expect(admin.role).toBe('admin');
    expect(admin.isAdmin).toBe(true);

    const withAdminCert = new MspManager([org1.mspConfig({ admins: [org1.client.certPem] })]);
    const client = withAdminCert.deserialize(org1.client.serialized);
    expect(client.role).toBe('client');
    expect(client.isAdmin).toBe(true);

    const noOUs = new MspManager([org1.mspConfig({ nodeOUs: { enable: false }, admins: [org1.peer.certPem] })]);
    expect(noOUs.deserialize(org1.peer.serialized)).toMatchObject({ role: undefined, isAdmin: true });
    expect(noOUs.deserialize(org1.admin.serialized)).toMatchObject({ role: undefined, isAdmin: false });
  });

  it('MSP_UNKNOWN for an mspId the manager does not know', () => {
    const e = errorOf(() => manager.deserialize(ser('Org3MSP', org1.peer.certPem)));
    expect(e.code).toBe(MspErrorCode.UNKNOWN);
    expect(e.httpStatus).toBe(403);
  });

  it("MSP_CERT_WRONG_CA for another org's certificate presented under this MSP", () => {
    const e = errorOf(() => manager.deserialize(ser('Org1MSP', org2.peer.certPem)));
    expect(e.code).toBe(MspErrorCode.CERT_WRONG_CA);
    expect(e.httpStatus).toBe(401);
  });

  it('MSP_CERT_WRONG_CA for a look-alike CA with the same name but another key', async () => {
    const impostor = await createTestCa({ mspId: 'Org1MSP' });
    const fake = await impostor.issue({ cn: 'peer0.org1.example.com', role: 'peer' });
    expect(errorOf(() => manager.deserialize(fake.serialized)).code).toBe(MspErrorCode.CERT_WRONG_CA);
  });

  it('MSP_CERT_EXPIRED and MSP_CERT_NOT_YET_VALID', async () => {
    const now = Date.now();
    const expired = await org1.ca.issue({
      cn: 'old',
      role: 'client',
      notBefore: new Date(now - 10 * DAY),
      notAfter: new Date(now - DAY),
    });
    const future = await org1.ca.issue({
      cn: 'future',
      role: 'client',
      notBefore: new Date(now + DAY),
      notAfter: new Date(now + 10 * DAY),
    });
    expect(errorOf(() => manager.deserialize(expired.serialized)).code).toBe(MspErrorCode.CERT_EXPIRED);
    expect(errorOf(() => manager.deserialize(future.serialized)).code).toBe(MspErrorCode.CERT_NOT_YET_VALID);
  });

  it('checks the validity of the whole chain, not only the member certificate', async () => {
    const now = Date.now();
    const ca = await createTestCa({ mspId: 'ShortMSP', notBefore: new Date(now - DAY), notAfter: new Date(now + DAY) });
    const member = await ca.issue({ cn: 'u', role: 'client', notAfter: new Date(now + 30 * DAY) });
    const msp = createMsp(ca.mspConfig());
    expect(msp.validate(member.certPem, new Date(now)).role).toBe('client');
    expect(errorOf(() => msp.validate(member.certPem, new Date(now + 2 * DAY))).code).toBe(MspErrorCode.CERT_EXPIRED);
  });

  it('MSP_CERT_REVOKED for a serial in a CRL signed by the issuing CA', async () => {
    const victim = await org1.ca.issue({ cn: 'revoked-user', role: 'client' });
    const m = new MspManager([org1.mspConfig({ revocationList: [await org1.ca.crl([victim.serial])] })]);
    const e = errorOf(() => m.deserialize(victim.serialized));
    expect(e.code).toBe(MspErrorCode.CERT_REVOKED);
    expect(m.deserialize(org1.client.serialized).role).toBe('client');
  });

  it('refuses a CRL that no CA of the MSP signed', async () => {
    const foreignCrl = await org2.ca.crl([org1.client.serial]);
    const e = errorOf(() => new MspManager([org1.mspConfig({ revocationList: [foreignCrl] })]));
    expect(e.code).toBe(MspErrorCode.CONFIG_INVALID);
  });

  it('MSP_WRONG_ROLE with no role OU, or two roles, when NodeOUs are enabled', async () => {
    const noRole = await org1.ca.issue({ cn: 'nobody', ous: ['department1'] });
    const twoRoles = await org1.ca.issue({ cn: 'both', role: 'peer', ous: ['client'] });
    const e = errorOf(() => manager.deserialize(noRole.serialized));
    expect(e.code).toBe(MspErrorCode.WRONG_ROLE);
    expect(e.httpStatus).toBe(403);
    expect(errorOf(() => manager.deserialize(twoRoles.serialized)).code).toBe(MspErrorCode.WRONG_ROLE);
    // Affiliation OUs next to one role OU are fine.
    const affiliated = await org1.ca.issue({ cn: 'aff', role: 'client', ous: ['org1', 'department1'] });
    expect(manager.deserialize(affiliated.serialized).role).toBe('client');
    // Without NodeOUs the same certificate is a plain member.
    const plain = new MspManager([org1.mspConfig({ nodeOUs: { enable: false } })]);
    expect(plain.deserialize(noRole.serialized).role).toBeUndefined();
  });

  it('MSP_CERT_MALFORMED for bytes that are not one PEM certificate', () => {
    const garbage = new TextEncoder().encode('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    expect(errorOf(() => manager.deserialize({ mspId: 'Org1MSP', idBytes: garbage })).code).toBe(
      MspErrorCode.CERT_MALFORMED,
    );
    const two = ser('Org1MSP', org1.peer.certPem + org1.client.certPem);
    expect(errorOf(() => manager.deserialize(two)).code).toBe(MspErrorCode.CERT_MALFORMED);
    expect(errorOf(() => manager.deserialize({ mspId: 'Org1MSP', idBytes: new Uint8Array([0xff, 0xfe]) })).code).toBe(
      MspErrorCode.CERT_MALFORMED,
    );
  });

  it('refuses a CA certificate as a member identity', () => {
    expect(errorOf(() => manager.deserialize(ser('Org1MSP', org1.ca.certPem))).code).toBe(MspErrorCode.CERT_IS_CA);
  });

  it('verifies signatures: good, over other bytes, and high-S', () => {
    const sig = sign(org1.client.privateKey, msg);
    expect(manager.verifySignature(org1.client.serialized, msg, sig).role).toBe('client');
    const other = new TextEncoder().encode('other bytes');
    expect(errorOf(() => manager.verifySignature(org1.client.serialized, other, sig)).code).toBe(
      SignatureErrorCode.INVALID,
    );
    // Signed by someone else's key.
    expect(errorOf(() => manager.verifySignature(org1.peer.serialized, msg, sig)).code).toBe(
      SignatureErrorCode.INVALID,
    );
    const { r, s } = parseDerSignature(sig);
    const high = encodeDerSignature(r, P256_N - s);
    expect(errorOf(() => manager.verifySignature(org1.client.serialized, msg, high)).code).toBe(
      SignatureErrorCode.HIGH_S,
    );
    const identity = manager.deserialize(org1.client.serialized);
    expect(identity.verifies(msg, sig)).toBe(true);
    expect(identity.verifies(msg, high)).toBe(false);
  });

  it('accepts members issued by an intermediate CA, and honours CRLs along the chain', async () => {
    const ca = await createTestCa({ mspId: 'InterMSP' });
    const ica = await ca.createIntermediate();
    const member = await ca.issue({ cn: 'via-ica', role: 'peer', intermediate: ica });
    const m = new MspManager([ca.mspConfig()]);
    expect(m.deserialize(member.serialized).role).toBe('peer');
    expect(ca.mspConfig().intermediateCerts).toEqual([ica.certPem]);

    // Without the intermediate in the MSP, the chain does not reach a root.
    const rootOnly = new MspManager([ca.mspConfig({ intermediateCerts: [] })]);
    expect(errorOf(() => rootOnly.deserialize(member.serialized)).code).toBe(MspErrorCode.CERT_WRONG_CA);

    // Member revoked by the intermediate's CRL.
    const byIca = new MspManager([ca.mspConfig({ revocationList: [await ica.crl([member.serial])] })]);
    expect(errorOf(() => byIca.deserialize(member.serialized)).code).toBe(MspErrorCode.CERT_REVOKED);
    // Intermediate revoked by the root: everything under it is revoked.
    const byRoot = new MspManager([ca.mspConfig({ revocationList: [await ca.crl([ica.serial])] })]);
    expect(errorOf(() => byRoot.deserialize(member.serialized)).code).toBe(MspErrorCode.CERT_REVOKED);
    // A CRL from the root naming the member's serial does not apply: the root did not issue it.
    const wrongIssuer = new MspManager([ca.mspConfig({ revocationList: [await ca.crl([member.serial])] })]);
    expect(wrongIssuer.deserialize(member.serialized).role).toBe('peer');
  });

  it('reads Fabric CA attributes from the certificate extension', async () => {
    const user = await org1.ca.issue({
      cn: 'attr-user',
      role: 'client',
      attrs: { 'hf.EnrollmentID': 'attr-user', department: 'finance', 'abac.init': 'true' },
    });
    const identity = manager.deserialize(user.serialized);
    expect(identity.attributes).toEqual({ 'hf.EnrollmentID': 'attr-user', department: 'finance', 'abac.init': 'true' });
    expect(manager.deserialize(org1.peer.serialized).attributes).toEqual({});
  });
});

describe('MspManager cache', () => {
  it('serves cached identities but still expires them when the clock moves', async () => {
    const org = await createTestOrg('CacheMSP');
    const start = Date.now();
    const short = await org.ca.issue({ cn: 'short', role: 'client', notAfter: new Date(start + DAY) });
    let now = new Date(start);
    const m = new MspManager([org.mspConfig()], { clock: () => now });
    const first = m.deserialize(short.serialized);
    expect(m.deserialize(short.serialized)).toBe(first);
    now = new Date(start + 2 * DAY);
    expect(errorOf(() => m.deserialize(short.serialized)).code).toBe(MspErrorCode.CERT_EXPIRED);
    expect(m.deserialize(org.peer.serialized).role).toBe('peer');
  });

  it('forgets cached identities when the MSP is updated with a new CRL', async () => {
    const org = await createTestOrg('RevokeMSP');
    const m = new MspManager([org.mspConfig()]);
    const sig = sign(org.client.privateKey, msg);
    expect(m.verifySignature(org.client.serialized, msg, sig).role).toBe('client');
    m.updateMsp(org.mspConfig({ revocationList: [await org.ca.crl([org.client.serial])] }));
    expect(errorOf(() => m.verifySignature(org.client.serialized, msg, sig)).code).toBe(MspErrorCode.CERT_REVOKED);
    expect(m.deserialize(org.peer.serialized).role).toBe('peer');
  });
});
