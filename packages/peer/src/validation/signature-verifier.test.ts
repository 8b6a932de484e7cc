import { verify as nodeVerify, randomBytes } from 'node:crypto';
import { generateKeyPair, publicKeyToDer, sign } from '@loom/common/crypto/signing';
import { encodeDerSignature, P256_N, parseDerSignature } from '@loom/common/crypto/signature-der';
import { createTestOrg } from '@loom/common/testing/index';
import { afterAll, describe, expect, it } from 'vitest';
import { createSignatureVerifier, type SignatureVerificationItem } from './signature-verifier.js';

const keys = Array.from({ length: 4 }, () => generateKeyPair());

/** `count` items, every third one invalid in a different way. */
function makeItems(count: number): { items: SignatureVerificationItem[]; expected: boolean[] } {
  const items: SignatureVerificationItem[] = [];
  const expected: boolean[] = [];
  for (let i = 0; i < count; i++) {
    const k = keys[i % keys.length]!;
    const message = new Uint8Array(randomBytes(64));
    const signature = sign(k.privateKey, message);
    const publicKeyDer = publicKeyToDer(k.publicKey);
    if (i % 3 === 1) {
      items.push({ publicKeyDer, message: new Uint8Array(randomBytes(64)), signature }); // wrong message
      expected.push(false);
    } else if (i % 6 === 2) {
      items.push({ publicKeyDer: publicKeyToDer(keys[(i + 1) % keys.length]!.publicKey), message, signature }); // wrong key
      expected.push(false);
    } else {
      items.push({ publicKeyDer, message, signature });
      expected.push(true);
    }
  }
  return { items, expected };
}

const pools: { close(): Promise<void> }[] = [];
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

describe('signature verifier', () => {
  it('worker and main-thread paths agree', async () => {
    const { items, expected } = makeItems(300);
    const main = createSignatureVerifier({ poolSize: 0 });
    const pool = createSignatureVerifier({ poolSize: 2, minWorkerBatch: 16, minChunk: 8 });
    pools.push(main, pool);
    expect(await main.verifyMany(items)).toEqual(expected);
    expect(await pool.verifyMany(items)).toEqual(expected);
    expect(main.stats()).toMatchObject({ mainThreadVerified: 300, workerVerified: 0 });
    expect(pool.stats()).toMatchObject({ mainThreadVerified: 0, workerVerified: 300 });
    expect(pool.stats().workerBatches).toBeGreaterThanOrEqual(2);
  });

  it('small batches stay on the main thread', async () => {
    const { items, expected } = makeItems(5);
    const pool = createSignatureVerifier({ poolSize: 2, minWorkerBatch: 16 });
    pools.push(pool);
    expect(await pool.verifyMany(items)).toEqual(expected);
    expect(pool.stats()).toMatchObject({ mainThreadVerified: 5, workerVerified: 0, workerBatches: 0 });
  });

  it('answers a signature seen before from the cache, including duplicates within a batch', async () => {
    const { items, expected } = makeItems(40);
    const pool = createSignatureVerifier({ poolSize: 2, minWorkerBatch: 8 });
    pools.push(pool);
    expect(await pool.verifyMany(items)).toEqual(expected);
    const first = pool.stats();
    expect(first.cacheHits).toBe(0);
    // Same signatures again, plus each one twice: nothing is verified a second time.
    const again = [...items, ...items];
    expect(await pool.verifyMany(again)).toEqual([...expected, ...expected]);
    const second = pool.stats();
    expect(second.cacheHits - first.cacheHits).toBe(80);
    expect(second.workerVerified + second.mainThreadVerified).toBe(first.workerVerified + first.mainThreadVerified);
  });

  it('the cache keys on signer, signature and message: a changed message is verified anew', async () => {
    const v = createSignatureVerifier({ poolSize: 0 });
    pools.push(v);
    const k = keys[0]!;
    const message = new Uint8Array(randomBytes(32));
    const signature = sign(k.privateKey, message);
    const publicKeyDer = publicKeyToDer(k.publicKey);
    expect(await v.verifyMany([{ publicKeyDer, message, signature }])).toEqual([true]);
    const other = message.slice();
    other[0]! ^= 1;
    expect(await v.verifyMany([{ publicKeyDer, message: other, signature }])).toEqual([false]);
    expect(await v.verifyMany([{ publicKeyDer: publicKeyToDer(keys[1]!.publicKey), message, signature }])).toEqual([
      false,
    ]);
    expect(v.stats().cacheHits).toBe(0);
  });

  it('in one batch, the same signature over another message or by another signer is verified on its own', async () => {
    const k = keys[0]!;
    const message = new Uint8Array(randomBytes(64));
    const signature = sign(k.privateKey, message);
    const publicKeyDer = publicKeyToDer(k.publicKey);
    const other = message.slice();
    other[3]! ^= 1;
    const otherKey = publicKeyToDer(keys[1]!.publicKey);
    for (const v of [
      createSignatureVerifier({ poolSize: 0 }),
      createSignatureVerifier({ poolSize: 1, minWorkerBatch: 1 }),
    ]) {
      pools.push(v);
      const batch = [
        { publicKeyDer, message, signature },
        { publicKeyDer, message: other, signature },
        { publicKeyDer: otherKey, message, signature },
        { publicKeyDer, message: message.slice(), signature: signature.slice() },
      ];
      expect(await v.verifyMany(batch)).toEqual([true, false, false, true]);
      expect(v.stats().cacheHits).toBe(1);
      // Cached afterwards by signer + signature + message digest: a forged message is still refused.
      expect(await v.verifyMany([batch[1]!, batch[0]!])).toEqual([false, true]);
    }
  });

  it('verifies a message given in two parts (message ‖ messageTail) like the whole, on both paths', async () => {
    const k = keys[0]!;
    const head = new Uint8Array(randomBytes(300));
    const tail = new Uint8Array(randomBytes(90));
    const whole = new Uint8Array([...head, ...tail]);
    const signature = sign(k.privateKey, whole);
    const publicKeyDer = publicKeyToDer(k.publicKey);
    const badTail = tail.slice();
    badTail[0]! ^= 1;
    for (const v of [
      createSignatureVerifier({ poolSize: 0 }),
      createSignatureVerifier({ poolSize: 1, minWorkerBatch: 1 }),
    ]) {
      pools.push(v);
      expect(await v.verifyMany([{ publicKeyDer, message: head, messageTail: tail, signature }])).toEqual([true]);
      // The whole message signed the same way is the same (signer, signature, digest): a cache hit.
      const before = v.stats().cacheHits;
      expect(await v.verifyMany([{ publicKeyDer, message: whole, signature }])).toEqual([true]);
      expect(v.stats().cacheHits - before).toBe(1);
      expect(await v.verifyMany([{ publicKeyDer, message: head, messageTail: badTail, signature }])).toEqual([false]);
      expect(v.stats().cacheHits - before).toBe(1);
    }
  });

  it('rejects the high-S twin of a valid signature on both paths, though OpenSSL accepts it', async () => {
    const k = keys[0]!;
    const message = new Uint8Array(randomBytes(32));
    const low = sign(k.privateKey, message);
    const { r, s } = parseDerSignature(low);
    const high = encodeDerSignature(r, P256_N - s);
    expect(nodeVerify('sha256', message, k.publicKey, high)).toBe(true);
    const publicKeyDer = publicKeyToDer(k.publicKey);
    const batch = Array.from({ length: 20 }, (_, i) => ({ publicKeyDer, message, signature: i % 2 ? high : low }));
    for (const v of [
      createSignatureVerifier({ poolSize: 0 }),
      createSignatureVerifier({ poolSize: 2, minWorkerBatch: 1 }),
    ]) {
      pools.push(v);
      expect(await v.verifyMany(batch)).toEqual(batch.map((_, i) => i % 2 === 0));
      expect(v.stats().rejectedEncoding).toBe(10);
    }
  });

  it('verifies against certificates and rejects malformed keys and signatures', async () => {
    const org = await createTestOrg('Org1MSP');
    const message = new Uint8Array(randomBytes(32));
    const signature = await org.peer.signer.sign(message);
    const items: SignatureVerificationItem[] = [
      { certPem: org.peer.certPem, message, signature },
      { certPem: org.client.certPem, message, signature },
      { certPem: 'not a pem', message, signature },
      { publicKeyDer: new Uint8Array([1, 2, 3]), message, signature },
      { certPem: org.peer.certPem, message, signature: new Uint8Array([0x30, 0x00]) },
      { message, signature },
    ];
    const expected = [true, false, false, false, false, false];
    for (const v of [
      createSignatureVerifier({ poolSize: 0 }),
      createSignatureVerifier({ poolSize: 1, minWorkerBatch: 1, minChunk: 1 }),
    ]) {
      pools.push(v);
      expect(await v.verifyMany(items)).toEqual(expected);
    }
  });

  it('a signature this process made and remembered is not verified again; a mismatched key is never trusted', async () => {
    const org = await createTestOrg('Org1MSP');
    const head = new Uint8Array(randomBytes(300));
    const tail = new Uint8Array(randomBytes(90));
    const sign2 = async () => {
      const message = new Uint8Array(randomBytes(300));
      return {
        message,
        messageTail: tail,
        signature: await org.peer.signer.sign(new Uint8Array([...message, ...tail])),
      };
    };
    const v = createSignatureVerifier({ poolSize: 1, minWorkerBatch: 1 });
    pools.push(v);
    const first = await sign2();
    const second = await sign2();
    v.rememberOwn({ certPem: org.peer.certPem, ...first });
    v.rememberOwn({ certPem: org.peer.certPem, ...second });
    // The first proves the key matches the certificate (one verification); the second costs none.
    expect(v.stats()).toMatchObject({ rememberedOwn: 2, mainThreadVerified: 1, workerVerified: 0 });
    const forged = { certPem: org.peer.certPem, message: head, messageTail: tail, signature: second.signature };
    expect(
      await v.verifyMany([
        { certPem: org.peer.certPem, ...first },
        { certPem: org.peer.certPem, ...second },
        forged,
        { certPem: org.client.certPem, ...second },
      ]),
    ).toEqual([true, true, false, false]);
    // Only the forged message and the other signer were verified; the two remembered were cache hits.
    expect(v.stats()).toMatchObject({ cacheHits: 2, workerVerified: 2 });

    // Signatures made with a key that is not the certificate's: never remembered as valid.
    const w = createSignatureVerifier({ poolSize: 0 });
    pools.push(w);
    const wrong = await sign2();
    w.rememberOwn({ certPem: org.client.certPem, ...wrong });
    w.rememberOwn({ certPem: org.client.certPem, ...(await sign2()) });
    expect(w.stats().rememberedOwn).toBe(0);
    expect(await w.verifyMany([{ certPem: org.client.certPem, ...wrong }])).toEqual([false]);

    // A high-S signature is not remembered (blocks reject it whoever made it).
    const { r, s } = parseDerSignature(first.signature);
    const high = encodeDerSignature(r, P256_N - s);
    const x = createSignatureVerifier({ poolSize: 0 });
    pools.push(x);
    x.rememberOwn({ certPem: org.peer.certPem, ...first, signature: high });
    expect(await x.verifyMany([{ certPem: org.peer.certPem, ...first, signature: high }])).toEqual([false]);
    expect(x.stats()).toMatchObject({ rememberedOwn: 0, cacheHits: 0, rejectedEncoding: 1 });
  });

  it('keeps working on the main thread after close()', async () => {
    const { items, expected } = makeItems(30);
    const pool = createSignatureVerifier({ poolSize: 2, minWorkerBatch: 1 });
    await pool.close();
    expect(await pool.verifyMany(items)).toEqual(expected);
    expect(pool.stats().workerVerified).toBe(0);
  });
});
