import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Bytes, decodeBlock, encodeBlock, fromUtf8, sha256, toHex, TxValidationCode, utf8 } from '@loom/common';
import { createTestOrg } from '@loom/common/testing/index';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channelLedgerPath, openChannelLedger } from '../src/committer/ledger.js';
import { verifyLedger } from '../src/committer/verify.js';
import { assertKeyProof, assertTxProof, verifyKeyProof, verifyTxProof } from '../src/ledger/accumulator.js';
import { tagged, u64 } from '../src/ledger/keys.js';
import { openLedgerKV, openLedgerStores } from '../src/ledger/ledger-stores.js';
import { channelConfigFor, createTestNetwork, del, endorserTx, put, TestChain, type TestNetwork } from './fixtures.js';

let net: TestNetwork;
const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'loom-commit-'));
  dirs.push(d);
  return d;
}

beforeAll(async () => {
  net = await createTestNetwork('mychannel');
});
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const both = () => [net.org1.peer, net.org2.peer];
const text = (b: Bytes | undefined) => (b === undefined ? undefined : fromUtf8(b));

/** Genesis + three blocks exercising valid and invalid transactions. */
async function buildScenario() {
  const chain = new TestChain(net);
  const a = await endorserTx(net, {
    creator: net.org1.client,
    endorsers: both(),
    writes: [put('a', '1'), put('b', '1')],
    event: { name: 'created', payload: utf8('a,b') },
  });
  const onlyOneOrg = await endorserTx(net, {
    creator: net.org1.client,
    endorsers: [net.org1.peer],
    writes: [put('x', 'no')],
  });
  const clientEndorsed = await endorserTx(net, {
    creator: net.org2.client,
    endorsers: [net.org1.client, net.org2.client],
    writes: [put('y', 'no')],
  });
  await chain.cut([a.envelope, onlyOneOrg.envelope, clientEndorsed.envelope]);

  // Block 2: reads a at (1,0) and updates it; a second tx read the same version → MVCC conflict.
  const upd = await endorserTx(net, {
    creator: net.org2.client,
    endorsers: both(),
    reads: [{ key: 'a', version: { blockNum: 1, txNum: 0 } }],
    writes: [put('a', '2')],
  });
  const stale = await endorserTx(net, {
    creator: net.org1.client,
    endorsers: both(),
    reads: [{ key: 'a', version: { blockNum: 1, txNum: 0 } }],
    writes: [put('a', 'stale')],
  });
  const phantom = await endorserTx(net, {
    creator: net.org1.client,
    endorsers: both(),
    rangeQueries: [
      { startKey: 'a', endKey: 'c', itrExhausted: true, reads: [{ key: 'a', version: { blockNum: 1, txNum: 0 } }] },
    ],
    writes: [put('z', 'phantom')],
  });
  await chain.cut([upd.envelope, stale.envelope, phantom.envelope]);

  // Block 3: replay of an already committed transaction, and a delete.
  const delB = await endorserTx(net, { creator: net.org1.client, endorsers: both(), writes: [del('b')] });
  await chain.cut([a.envelope, delB.envelope]);
  return {
    chain,
    txIds: {
      a: a.txId,
      onlyOneOrg: onlyOneOrg.txId,
      clientEndorsed: clientEndorsed.txId,
      upd: upd.txId,
      stale: stale.txId,
      phantom: phantom.txId,
      delB: delB.txId,
    },
  };
}

describe('ChannelLedger commit', () => {
  it('commits valid and invalid transactions with the right codes, state and history', async () => {
    const dataDir = await tempDir();
    const { chain, txIds } = await buildScenario();
    const ledger = await openChannelLedger({ dataDir, channelId: net.channelId });
    const events: number[] = [];
    ledger.onCommit((b) => events.push(b.blockNum));
    const results = [];
    for (const b of chain.blocks) results.push(await ledger.commitBlock(b));
    expect(ledger.height()).toBe(4);
    expect(events).toEqual([0, 1, 2, 3]);
    expect([...results[0]!.codes]).toEqual([TxValidationCode.VALID]);
    expect([...results[1]!.codes]).toEqual([
      TxValidationCode.VALID,
      TxValidationCode.ENDORSEMENT_POLICY_FAILURE,
      TxValidationCode.ENDORSEMENT_POLICY_FAILURE,
    ]);
    expect([...results[2]!.codes]).toEqual([
      TxValidationCode.VALID,
      TxValidationCode.MVCC_READ_CONFLICT,
      TxValidationCode.PHANTOM_READ_CONFLICT,
    ]);
    expect([...results[3]!.codes]).toEqual([TxValidationCode.DUPLICATE_TXID, TxValidationCode.VALID]);

    const a = await ledger.getState('basic', 'a');
    expect(text(a?.value)).toBe('2');
    expect(a?.version).toEqual({ blockNum: 2, txNum: 0 });
    expect(await ledger.getState('basic', 'b')).toBeUndefined();
    expect(await ledger.getState('basic', 'x')).toBeUndefined();
    expect(await ledger.getState('basic', 'z')).toBeUndefined();

    const hist = [];
    for await (const m of ledger.getHistoryForKey('basic', 'a'))
      hist.push([m.blockNum, m.txNum, text(m.value), m.txId]);
    expect(hist).toEqual([
      [2, 0, '2', txIds.upd],
      [1, 0, '1', txIds.a],
    ]);
    const histB = [];
    for await (const m of ledger.getHistoryForKey('basic', 'b')) histB.push([m.blockNum, m.isDelete]);
    expect(histB).toEqual([
      [3, true],
      [1, false],
    ]);

    expect(await ledger.getTxLocation(txIds.stale)).toEqual({
      blockNum: 2,
      txNum: 1,
      validationCode: TxValidationCode.MVCC_READ_CONFLICT,
    });
    // The duplicate keeps the first (valid) location.
    expect(await ledger.getTxLocation(txIds.a)).toEqual({
      blockNum: 1,
      txNum: 0,
      validationCode: TxValidationCode.VALID,
    });
    const stored = await ledger.getBlock(2);
    expect([...stored!.metadata.txValidationCodes]).toEqual([...results[2]!.codes]);
    expect(ledger.digest()).toMatchObject({ channelId: 'mychannel', height: 4, txCount: 9 });
    await ledger.close();
  });

  it('restarts with the same state and keeps committing', async () => {
    const dataDir = await tempDir();
    const { chain } = await buildScenario();
    let ledger = await openChannelLedger({ dataDir, channelId: net.channelId });
    for (const b of chain.blocks) await ledger.commitBlock(b);
    const stateHash = toHex(await ledger.stateHash());
    const digest = ledger.digest();
    await ledger.close();

    ledger = await openChannelLedger({ dataDir, channelId: net.channelId });
    expect(ledger.height()).toBe(4);
    expect(toHex(await ledger.stateHash())).toBe(stateHash);
    expect(toHex(ledger.digest().root)).toBe(toHex(digest.root));
    const next = await endorserTx(net, {
      creator: net.org2.client,
      endorsers: both(),
      reads: [{ key: 'a', version: { blockNum: 2, txNum: 0 } }],
      writes: [put('a', '3')],
    });
    const r = await ledger.commitBlock(await chain.cut([next.envelope]));
    expect([...r.codes]).toEqual([TxValidationCode.VALID]);
    expect(text((await ledger.getState('basic', 'a'))?.value)).toBe('3');
    await ledger.close();
  });

  it('refuses blocks that break the chain, lack a valid orderer signature or skip ahead', async () => {
    const dataDir = await tempDir();
    const chain = new TestChain(net);
    const ledger = await openChannelLedger({ dataDir, channelId: net.channelId });
    await ledger.commitBlock(chain.blocks[0]!);
    const tx = await endorserTx(net, { creator: net.org1.client, endorsers: both(), writes: [put('k', 'v')] });

    // Signed by a peer, not an orderer.
    const byPeer = new TestChain(net, net.org1.peer);
    await expect(ledger.commitBlock(await byPeer.cut([tx.envelope]))).rejects.toMatchObject({
      code: 'LEDGER_BAD_ORDERER_SIGNATURE',
    });
    // Signed by an orderer of an unknown CA.
    const rogue = await createTestOrg('OrdererMSP');
    const byRogue = new TestChain(net, rogue.orderer);
    await expect(ledger.commitBlock(await byRogue.cut([tx.envelope]))).rejects.toMatchObject({
      code: 'LEDGER_BAD_ORDERER_SIGNATURE',
    });
    // Data altered after signing.
    const good = decodeBlock(await chain.cut([tx.envelope]));
    const other = await endorserTx(net, { creator: net.org1.client, endorsers: both(), writes: [put('k', 'evil')] });
    await expect(ledger.commitBlock(encodeBlock({ ...good, data: [other.envelope] }))).rejects.toMatchObject({
      code: 'LEDGER_DATA_HASH_MISMATCH',
    });
    // Skipping a block.
    const skip = await chain.cut([other.envelope]);
    await expect(ledger.commitBlock(skip)).rejects.toMatchObject({ code: 'LEDGER_BLOCK_OUT_OF_ORDER' });
    expect(ledger.height()).toBe(1);
    // The good one still commits.
    await ledger.commitBlock(encodeBlock(good));
    await ledger.commitBlock(skip);
    expect(ledger.height()).toBe(3);
    await ledger.close();
  });

  it('applies a config block: MSPs added from that block on', async () => {
    const dataDir = await tempDir();
    const org3 = await createTestOrg('Org3MSP');
    const chain = new TestChain(net);
    const ledger = await openChannelLedger({ dataDir, channelId: net.channelId });
    await ledger.commitBlock(chain.blocks[0]!);
    const before = await endorserTx(net, { creator: org3.client, endorsers: both(), writes: [put('o3', 'early')] });
    const r1 = await ledger.commitBlock(await chain.cut([before.envelope]));
    expect([...r1.codes]).toEqual([TxValidationCode.BAD_CREATOR_SIGNATURE]);

    await ledger.commitBlock(
      await chain.cutConfig(channelConfigFor(net.channelId, net.ordererOrg, [net.org1, net.org2, org3], 1)),
    );
    expect(Object.keys(ledger.config()!.orgs).sort()).toEqual(['Org1MSP', 'Org2MSP', 'Org3MSP']);
    const after = await endorserTx(net, {
      creator: org3.client,
      endorsers: [net.org1.peer, org3.peer],
      writes: [put('o3', 'ok')],
    });
    const r3 = await ledger.commitBlock(await chain.cut([after.envelope]));
    expect([...r3.codes]).toEqual([TxValidationCode.VALID]);
    // A stale config (sequence not above the current one) is marked invalid and not applied.
    const r4 = await ledger.commitBlock(
      await chain.cutConfig(channelConfigFor(net.channelId, net.ordererOrg, [net.org1], 1)),
    );
    expect([...r4.codes]).toEqual([TxValidationCode.INVALID_CONFIG_TRANSACTION]);
    expect(Object.keys(ledger.config()!.orgs)).toHaveLength(3);
    await ledger.close();
    // The config survives a restart.
    const reopened = await openChannelLedger({ dataDir, channelId: net.channelId });
    expect(reopened.config()?.sequence).toBe(1);
    await reopened.close();
  });

  it('recovers when the block store is ahead of the state savepoint', async () => {
    const dataDir = await tempDir();
    const { chain } = await buildScenario();
    const ledger = await openChannelLedger({ dataDir, channelId: net.channelId });
    for (const b of chain.blocks) await ledger.commitBlock(b);
    const expected = toHex(await ledger.stateHash());
    await ledger.close();

    const partial = await tempDir();
    const l2 = await openChannelLedger({ dataDir: partial, channelId: net.channelId });
    for (const b of chain.blocks.slice(0, 2)) await l2.commitBlock(b);
    await l2.close();
    // Blocks 2 and 3 reach the block store only, as if a crash had split the writes.
    const kv = await openLedgerKV(channelLedgerPath(partial, net.channelId));
    const stores = await openLedgerStores(kv);
    const batch = kv.batch();
    await stores.blocks.addBlock(batch, chain.blocks[2]!, new Uint8Array(3));
    await stores.blocks.addBlock(batch, chain.blocks[3]!, new Uint8Array(2));
    await batch.write();
    await kv.close();

    const recovered = await openChannelLedger({ dataDir: partial, channelId: net.channelId });
    expect(recovered.height()).toBe(4);
    expect(toHex(await recovered.stateHash())).toBe(expected);
    await recovered.close();
    expect((await verifyLedger(partial, net.channelId)).ok).toBe(true);
  });
  it('ignores block bytes a crash left beyond the height (bytes are written before the batch that indexes them)', async () => {
    const dataDir = await tempDir();
    const { chain } = await buildScenario();
    const full = await openChannelLedger({ dataDir: await tempDir(), channelId: net.channelId });
    for (const b of chain.blocks) await full.commitBlock(b);
    const expected = toHex(await full.stateHash());
    await full.close();

    const ledger = await openChannelLedger({ dataDir, channelId: net.channelId });
    for (const b of chain.blocks.slice(0, 2)) await ledger.commitBlock(b);
    await ledger.close();
    // Block 2's bytes reached the block-bytes database; the batch with its index and state did not.
    const kv = await openLedgerKV(channelLedgerPath(dataDir, net.channelId));
    await kv
      .sublevel('blocks')
      .batch()
      .put(tagged('n', u64(2)), chain.blocks[2]!)
      .write();
    await kv.close();

    const reopened = await openChannelLedger({ dataDir, channelId: net.channelId });
    expect(reopened.height()).toBe(2);
    expect(await reopened.getBlockBytes(2)).toBeUndefined();
    for (const b of chain.blocks.slice(2)) await reopened.commitBlock(b);
    expect(toHex(await reopened.stateHash())).toBe(expected);
    await reopened.close();
    expect(await verifyLedger(dataDir, net.channelId)).toMatchObject({ ok: true, height: chain.blocks.length });
  });
});

describe('verifyLedger', () => {
  it('passes an intact ledger and names the block whose stored bytes were altered', async () => {
    const dataDir = await tempDir();
    const { chain } = await buildScenario();
    const ledger = await openChannelLedger({ dataDir, channelId: net.channelId });
    for (const b of chain.blocks) await ledger.commitBlock(b);
    await ledger.close();
    const ok = await verifyLedger(dataDir, net.channelId);
    expect(ok).toMatchObject({ ok: true, height: 4, txCount: 9 });

    for (const [target, offset] of [
      [2, 0.5],
      [1, 0.9],
    ] as const) {
      const copy = await tempDir();
      const src = await openLedgerKV(channelLedgerPath(dataDir, net.channelId));
      const dst = await openLedgerKV(channelLedgerPath(copy, net.channelId));
      const b = dst.batch();
      for await (const [k, v] of src.iterate()) b.put(k, v);
      await b.write();
      await src.close();
      const blocks = dst.sublevel('blocks');
      const key = tagged('n', u64(target));
      const bytes = (await blocks.get(key))!.slice();
      const i = Math.floor(bytes.length * offset);
      bytes[i] = bytes[i]! ^ 0x01;
      await blocks.batch().put(key, bytes).write();
      await dst.close();
      const r = await verifyLedger(copy, net.channelId);
      expect(r.ok).toBe(false);
      expect(r).toMatchObject({ blockNum: target });
    }
  });

  it('names a block whose stored validation codes were changed (accumulator mismatch)', async () => {
    const dataDir = await tempDir();
    const { chain } = await buildScenario();
    const ledger = await openChannelLedger({ dataDir, channelId: net.channelId });
    for (const b of chain.blocks) await ledger.commitBlock(b);
    await ledger.close();
    const kv = await openLedgerKV(channelLedgerPath(dataDir, net.channelId));
    await kv
      .sublevel('blocks')
      .batch()
      .put(tagged('c', u64(2)), new Uint8Array([0, 0, 0]))
      .write();
    await kv.close();
    const r = await verifyLedger(dataDir, net.channelId);
    expect(r).toMatchObject({ ok: false, blockNum: 2 });
  });
});

describe('ledger proofs', () => {
  it('proves a transaction and a key version against the digest; altered data or another digest fail', async () => {
    const dataDir = await tempDir();
    const { chain, txIds } = await buildScenario();
    const ledger = await openChannelLedger({ dataDir, channelId: net.channelId });
    for (const b of chain.blocks.slice(0, 3)) await ledger.commitBlock(b);
    const digest = ledger.digest();

    const proof = await ledger.proveTx(txIds.upd);
    expect(() => assertTxProof(proof, digest, sha256, txIds.upd)).not.toThrow();
    expect(proof.validationCode).toBe(TxValidationCode.VALID);
    const invalidTx = await ledger.proveTx(txIds.stale);
    expect(verifyTxProof(invalidTx, digest, sha256)).toBe(true);
    expect(invalidTx.validationCode).toBe(TxValidationCode.MVCC_READ_CONFLICT);

    const altered = proof.envelope.slice();
    altered[altered.length - 5] = altered[altered.length - 5]! ^ 0xff;
    expect(verifyTxProof({ ...proof, envelope: altered }, digest, sha256)).toBe(false);
    expect(verifyTxProof({ ...proof, validationCode: TxValidationCode.MVCC_READ_CONFLICT }, digest, sha256)).toBe(
      false,
    );

    const keyProof = await ledger.proveKey('basic', 'a');
    expect(keyProof.version).toEqual({ blockNum: 2, txNum: 0 });
    expect(() => assertKeyProof(keyProof, digest, sha256, utf8('2'))).not.toThrow();
    expect(verifyKeyProof(keyProof, digest, sha256, utf8('1'))).toBe(false);
    const older = await ledger.proveKey('basic', 'a', { blockNum: 1, txNum: 0 });
    expect(verifyKeyProof(older, digest, sha256, utf8('1'))).toBe(true);

    // Another ledger state's digest: the proof does not verify against it.
    await ledger.commitBlock(chain.blocks[3]!);
    const later = ledger.digest();
    expect(verifyTxProof(proof, later, sha256)).toBe(false);
    expect(verifyTxProof(proof, { ...digest, root: sha256(utf8('other')) }, sha256)).toBe(false);
    // A fresh proof against the new digest verifies.
    expect(verifyTxProof(await ledger.proveTx(txIds.upd), later, sha256)).toBe(true);
    await ledger.close();
  });
});
