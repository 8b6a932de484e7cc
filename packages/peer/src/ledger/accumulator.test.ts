import { type Bytes, computeTxId, merkleAuditPath, merkleRootOfLeafHashes, TxValidationCode, utf8 } from '@loom/common';
import { sha256 } from '@loom/common/crypto/hash';
import { describe, expect, it } from 'vitest';
import {
  type AccumulatorStore,
  assertKeyProof,
  assertTxProof,
  createMemoryAccumulatorStore,
  encodeLedgerDigest,
  type LedgerDigest,
  LedgerAccumulator,
  mmrPosition,
  type TxProof,
  txLeafHash,
  verifyConsistency,
  verifyKeyProof,
  verifyTxProof,
} from './accumulator.js';
import { seededRandom as rng } from '@loom/common/testing/index';
import { testEndorserEnvelope } from './test-envelopes.js';

const CHANNEL = 'ch1';

/** An endorser transaction envelope writing `writes` in namespace `cc` (signatures are not checked by proofs). */
function envelopeFor(n: number, writes: { key: string; value?: string }[] = [], channelId = CHANNEL) {
  const creator = utf8(`creator-${n % 7}`);
  const nonce = utf8(`nonce-${n}-padding-to-24-bytes`);
  const txId = computeTxId(nonce, creator, sha256);
  const envelope = testEndorserEnvelope({
    txId,
    channelId,
    timestamp: 1_700_000_000_000 + n,
    creator,
    nonce,
    writes: writes.map((w) => ({ ns: 'cc', key: w.key, value: w.value ?? null })),
  });
  return { txId, envelope };
}

interface LedgerTx {
  blockNum: number;
  txNum: number;
  txId: string;
  envelope: Bytes;
  validationCode: number;
}

/** Builds a ledger of `blocks` blocks with 0..maxTx transactions each. */
async function buildLedger(
  blocks: number,
  maxTx: number,
  seed = 1,
  store: AccumulatorStore = createMemoryAccumulatorStore(),
) {
  const rand = rng(seed);
  const acc = await LedgerAccumulator.open(store, { channelId: CHANNEL, hash: sha256, height: 0 });
  const txs: LedgerTx[] = [];
  const digests: LedgerDigest[] = [acc.digest()];
  for (let b = 0; b < blocks; b++) {
    const count = Math.floor(rand() * (maxTx + 1));
    const blockTxs: LedgerTx[] = [];
    for (let t = 0; t < count; t++) {
      const { txId, envelope } = envelopeFor(txs.length + t);
      const validationCode = rand() < 0.1 ? TxValidationCode.MVCC_READ_CONFLICT : TxValidationCode.VALID;
      blockTxs.push({ blockNum: b, txNum: t, txId, envelope, validationCode });
    }
    digests.push(
      await acc.appendBlock(
        b,
        blockTxs.map((t) => ({ envelopeHash: sha256(t.envelope), validationCode: t.validationCode })),
      ),
    );
    txs.push(...blockTxs);
  }
  return { acc, txs, digests, store };
}

const leafOf = (t: LedgerTx) => txLeafHash(sha256, sha256(t.envelope), t.blockNum, t.txNum, t.validationCode);

describe('ledger accumulator', () => {
  it('MMR positions are post-order', () => {
    expect([mmrPosition(0, 0), mmrPosition(0, 1), mmrPosition(1, 0), mmrPosition(0, 2), mmrPosition(0, 3)]).toEqual([
      0, 1, 2, 3, 4,
    ]);
    expect([mmrPosition(1, 1), mmrPosition(2, 0), mmrPosition(0, 4), mmrPosition(3, 0)]).toEqual([5, 6, 7, 14]);
  });

  it('its root is the RFC 6962 root over all transactions, at every height', async () => {
    const { txs, digests } = await buildLedger(60, 9, 7);
    let seen = 0;
    for (const d of digests) {
      expect(d.root).toEqual(merkleRootOfLeafHashes(sha256, txs.slice(0, d.txCount).map(leafOf)));
      expect(d.txCount).toBeGreaterThanOrEqual(seen);
      seen = d.txCount;
    }
    expect(digests.at(-1)!.height).toBe(60);
  });

  it('thousands of leaves: inclusion proofs verify for random transactions and fail when altered', async () => {
    const { acc, txs } = await buildLedger(400, 15, 42);
    expect(txs.length).toBeGreaterThan(2500);
    const digest = acc.digest();
    const rand = rng(3);
    for (let i = 0; i < 60; i++) {
      const t = txs[Math.floor(rand() * txs.length)]!;
      const proof = await acc.proveTx(t, digest);
      expect(verifyTxProof(proof, digest, sha256, t.txId)).toBe(true);
      // Altered envelope, code, position, path, root, tree size, txId, channel.
      const env = Uint8Array.from(proof.envelope); // not slice(): cborg may hand back a Buffer, whose slice is a view
      env[env.length - 1]! ^= 1;
      const tampered: TxProof[] = [
        { ...proof, envelope: env },
        { ...proof, validationCode: proof.validationCode === 0 ? 11 : 0 },
        { ...proof, leafIndex: (proof.leafIndex + 1) % digest.txCount },
        { ...proof, txNum: proof.txNum + 1 },
        { ...proof, blockNum: proof.blockNum === 0 ? 1 : proof.blockNum - 1 },
        { ...proof, auditPath: proof.auditPath.map((p, j) => (j === 0 ? sha256(p) : p)) },
        { ...proof, auditPath: proof.auditPath.slice(1) },
        { ...proof, treeSize: proof.treeSize - 1 },
      ];
      for (const bad of tampered) expect(verifyTxProof(bad, digest, sha256)).toBe(false);
      expect(verifyTxProof(proof, { ...digest, root: sha256(digest.root) }, sha256)).toBe(false);
      expect(verifyTxProof(proof, digest, sha256, 'another-txid')).toBe(false);
      expect(verifyTxProof(proof, { ...digest, channelId: 'other' }, sha256)).toBe(false);
    }
    // Same paths as the reference implementation in common.
    const leaves = txs.map(leafOf);
    for (const i of [0, 1, 1023, 1024, leaves.length - 1]) {
      expect(await acc.auditPath(i)).toEqual(merkleAuditPath(sha256, leaves, i));
    }
  });

  it('a proof for an older digest verifies against that digest only', async () => {
    const { acc, txs, digests } = await buildLedger(50, 6, 11);
    const old = digests[30]!;
    const t = txs.find((x) => x.blockNum === 20)!;
    const proof = await acc.proveTx(t, old);
    expect(verifyTxProof(proof, old, sha256)).toBe(true);
    expect(verifyTxProof(proof, acc.digest(), sha256)).toBe(false);
    expect(() => assertTxProof(proof, acc.digest(), sha256)).toThrow(
      expect.objectContaining({ code: 'PROOF_INVALID' }),
    );
    expect(await acc.digestAt(30)).toEqual(old);
    // A transaction from after the old digest cannot be proven against it.
    const later = txs.find((x) => x.blockNum === 40)!;
    await expect(acc.proveTx(later, old)).rejects.toMatchObject({ code: 'ACCUMULATOR_OUT_OF_RANGE' });
  });

  it('reopening from the node store gives the same root and keeps appending identically', async () => {
    const a = await buildLedger(120, 8, 5);
    const b = await buildLedger(200, 8, 5);
    const reopened = await LedgerAccumulator.open(a.store, { channelId: CHANNEL, hash: sha256, height: 120 });
    expect(reopened.digest()).toEqual(a.acc.digest());
    const rest = b.txs.filter((t) => t.blockNum >= 120);
    for (let blk = 120; blk < 200; blk++) {
      const txs = rest.filter((t) => t.blockNum === blk);
      await reopened.appendBlock(
        blk,
        txs.map((t) => ({ envelopeHash: sha256(t.envelope), validationCode: t.validationCode })),
      );
    }
    expect(reopened.digest()).toEqual(b.acc.digest());
    // Replaying a block after a crash (store ahead of the ledger's height) rewrites identical nodes.
    const again = await LedgerAccumulator.open(b.store, { channelId: CHANNEL, hash: sha256, height: 199 });
    const last = b.txs.filter((t) => t.blockNum === 199);
    const d = await again.appendBlock(
      199,
      last.map((t) => ({ envelopeHash: sha256(t.envelope), validationCode: t.validationCode })),
    );
    expect(d).toEqual(b.acc.digest());
    await expect(again.appendBlock(5, [])).rejects.toMatchObject({ code: 'ACCUMULATOR_CORRUPT' });
    // reset() goes back to a committed height (a failed commit batch) from the store.
    await again.reset(120);
    expect(again.digest()).toEqual(a.acc.digest());
  });

  it('consistency proofs between digests', async () => {
    const { acc, digests } = await buildLedger(80, 7, 9);
    const rand = rng(17);
    for (let i = 0; i < 80; i++) {
      let x = Math.floor(rand() * digests.length);
      let y = Math.floor(rand() * digests.length);
      if (x > y) [x, y] = [y, x];
      const older = digests[x]!;
      const newer = digests[y]!;
      const proof = await acc.consistencyProof(older.txCount, newer.txCount);
      expect(verifyConsistency(older, newer, proof, sha256)).toBe(true);
      if (older.txCount > 0 && older.txCount < newer.txCount) {
        expect(verifyConsistency({ ...older, root: sha256(older.root) }, newer, proof, sha256)).toBe(false);
        expect(verifyConsistency(older, { ...newer, root: sha256(newer.root) }, proof, sha256)).toBe(false);
        if (proof.length > 0) {
          expect(verifyConsistency(older, newer, [sha256(proof[0]!), ...proof.slice(1)], sha256)).toBe(false);
        }
      }
    }
    expect(verifyConsistency(digests[10]!, { ...digests[20]!, channelId: 'x' }, [], sha256)).toBe(false);
  });

  it('key version proofs: history entry → envelope → rwset write → leaf → root', async () => {
    const store = createMemoryAccumulatorStore();
    const acc = await LedgerAccumulator.open(store, { channelId: CHANNEL, hash: sha256, height: 0 });
    await acc.appendBlock(0, [{ envelopeHash: sha256(utf8('genesis config')), validationCode: 0 }]);
    const t1 = envelopeFor(1, [
      { key: 'car1', value: 'red' },
      { key: 'car2', value: 'blue' },
    ]);
    const t2 = envelopeFor(2, [{ key: 'car1', value: 'green' }]);
    const t3 = envelopeFor(3, [{ key: 'car1' }]); // delete
    const bad = envelopeFor(4, [{ key: 'car1', value: 'stolen' }]);
    await acc.appendBlock(1, [
      { envelopeHash: sha256(t1.envelope), validationCode: 0 },
      { envelopeHash: sha256(t2.envelope), validationCode: 0 },
    ]);
    await acc.appendBlock(2, [
      { envelopeHash: sha256(bad.envelope), validationCode: TxValidationCode.MVCC_READ_CONFLICT },
      { envelopeHash: sha256(t3.envelope), validationCode: 0 },
    ]);
    const digest = acc.digest();
    const entry = (blockNum: number, txNum: number, value?: string) => ({
      namespace: 'cc',
      key: 'car1',
      version: { blockNum, txNum },
      isDelete: value === undefined,
      valueHash: value === undefined ? new Uint8Array(0) : sha256(utf8(value)),
    });
    const p1 = await acc.proveKey(entry(1, 0, 'red'), { ...t1, validationCode: 0 }, digest);
    const p2 = await acc.proveKey(entry(1, 1, 'green'), { ...t2, validationCode: 0 }, digest);
    const p3 = await acc.proveKey(entry(2, 1), { ...t3, validationCode: 0 }, digest);
    expect(verifyKeyProof(p1, digest, sha256, utf8('red'))).toBe(true);
    expect(verifyKeyProof(p2, digest, sha256)).toBe(true);
    expect(verifyKeyProof(p3, digest, sha256)).toBe(true);

    // Wrong value, wrong key, wrong version, another digest, a put claimed as delete.
    expect(verifyKeyProof(p1, digest, sha256, utf8('green'))).toBe(false);
    expect(verifyKeyProof({ ...p1, valueHash: sha256(utf8('green')) }, digest, sha256)).toBe(false);
    expect(verifyKeyProof({ ...p1, key: 'car3' }, digest, sha256)).toBe(false);
    expect(verifyKeyProof({ ...p1, namespace: 'other' }, digest, sha256)).toBe(false);
    expect(verifyKeyProof({ ...p1, version: { blockNum: 1, txNum: 1 } }, digest, sha256)).toBe(false);
    expect(verifyKeyProof({ ...p2, tx: p1.tx }, digest, sha256)).toBe(false);
    expect(verifyKeyProof({ ...p1, isDelete: true }, digest, sha256)).toBe(false);
    expect(verifyKeyProof(p1, await acc.digestAt(1), sha256)).toBe(false);
    expect(() => assertKeyProof(p1, digest, sha256, utf8('blue'))).toThrow(
      expect.objectContaining({ code: 'PROOF_INVALID' }),
    );

    // The write of an invalid transaction is not a key version, even with a correct inclusion proof.
    const pBad = await acc.proveKey(
      entry(2, 0, 'stolen'),
      { ...bad, validationCode: TxValidationCode.MVCC_READ_CONFLICT },
      digest,
    );
    expect(verifyTxProof(pBad.tx, digest, sha256)).toBe(true);
    expect(verifyKeyProof(pBad, digest, sha256)).toBe(false);
    // Claiming it was valid breaks the inclusion proof.
    expect(verifyKeyProof({ ...pBad, tx: { ...pBad.tx, validationCode: 0 } }, digest, sha256)).toBe(false);
  });

  it('digest bytes are domain-separated and change with every field', () => {
    const d: LedgerDigest = { channelId: CHANNEL, height: 3, txCount: 7, root: sha256(utf8('r')) };
    const base = encodeLedgerDigest(d);
    for (const other of [
      { ...d, channelId: 'ch2' },
      { ...d, height: 4 },
      { ...d, txCount: 8 },
      { ...d, root: sha256(utf8('s')) },
    ]) {
      expect(encodeLedgerDigest(other)).not.toEqual(base);
    }
  });
});
