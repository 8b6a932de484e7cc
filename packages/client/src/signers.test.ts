import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { isHighS, parseDerSignature } from '@loom/common/portable';
import { createTestOrg } from '@loom/common/testing/index';
import { describe, expect, it } from 'vitest';
import { sha256 } from './hash.js';
import { messageSignerOf, newPrivateKeySigner } from './signers.js';

describe('newPrivateKeySigner', () => {
  it('signs digests with low-S DER signatures that node:crypto verifies over the message', async () => {
    const org = await createTestOrg('Org1MSP');
    const signer = newPrivateKeySigner(org.client.keyPem);
    const key = createPublicKey(org.client.certPem);
    for (let i = 0; i < 20; i++) {
      const message = new TextEncoder().encode(`message ${i}`);
      const signature = await signer(sha256(message));
      expect(isHighS(parseDerSignature(signature).s)).toBe(false);
      expect(nodeVerify('sha256', message, key, signature)).toBe(true);
    }
  });

  it('in Node, also signs whole messages natively; the SDK makes those low-S', async () => {
    const org = await createTestOrg('Org1MSP');
    const signer = newPrivateKeySigner(org.client.keyPem);
    const signMessage = messageSignerOf(signer);
    expect(signMessage).toBeTypeOf('function');
    const key = createPublicKey(org.client.certPem);
    for (let i = 0; i < 20; i++) {
      const message = new TextEncoder().encode(`message ${i}`);
      const signature = await signMessage!(message);
      expect(nodeVerify('sha256', message, key, signature)).toBe(true);
      // A different message's signature does not verify: the message really was signed.
      expect(nodeVerify('sha256', new TextEncoder().encode(`other ${i}`), key, signature)).toBe(false);
    }
  });

  it('refuses something that is not a P-256 private key', () => {
    expect(() => newPrivateKeySigner('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')).toThrow(
      /malformed key/,
    );
  });
});
