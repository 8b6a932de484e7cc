// The commit pipeline: blocks handed to commitBlock while earlier ones are still committing start
// their stateless pass early (signatures to the worker pool); the results must be exactly those of
// committing them one at a time — also across a config block that changes the MSPs.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Bytes, decodeBlock, encodeBlock, fromUtf8, TxValidationCode, utf8 } from '@loom/common';
import { createTestOrg } from '@loom/common/testing/index';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  channelConfigFor,
  createTestNetwork,
  endorserTx,
  put,
  TestChain,
  type TestNetwork,
} from '../../test/fixtures.js';
import { createSignatureVerifier, type SignatureVerifierPool } from '../validation/signature-verifier.js';
import { openChannelLedger } from './ledger.js';

let net: TestNetwork;
let pool: SignatureVerifierPool;
const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'loom-pipeline-'));
  dirs.push(d);
  return d;
}

beforeAll(async () => {
  net = await createTestNetwork('mychannel');
  // Workers, with no main-thread shortcut for small batches: the pipeline's signatures really are in flight.
  pool = createSignatureVerifier({ poolSize: 2, minWorkerBatch: 1, minChunk: 1 });
});
afterAll(async () => {
  await pool.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const both = () => [net.org1.peer, net.org2.peer];

/** Genesis; a block with an Org3 tx (unknown MSP then); the config adding Org3; Org3 txs; MVCC and duplicates. */
async function scenario() {
  const org3 = await createTestOrg('Org3MSP');
  const chain = new TestChain(net);
  const early = await endorserTx(net, { creator: org3.client, endorsers: both(), writes: [put('o3', 'early')] });
  const a = await endorserTx(net, { creator: net.org1.client, endorsers: both(), writes: [put('a', '1')] });
  await chain.cut([early.envelope, a.envelope]);
  await chain.cutConfig(channelConfigFor(net.channelId, net.ordererOrg, [net.org1, net.org2, org3], 1));
  const late = await endorserTx(net, {
    creator: org3.client,
    endorsers: [net.org1.peer, org3.peer],
    writes: [put('o3', 'ok')],
  });
  const upd = await endorserTx(net, {
    creator: net.org2.client,
    endorsers: both(),
    reads: [{ key: 'a', version: { blockNum: 1, txNum: 1 } }],
    writes: [put('a', '2')],
  });
  const stale = await endorserTx(net, {
    creator: net.org1.client,
    endorsers: both(),
    reads: [{ key: 'a', version: { blockNum: 1, txNum: 1 } }],
    writes: [put('a', 'stale')],
  });
  await chain.cut([late.envelope, upd.envelope]);
  await chain.cut([stale.envelope, a.envelope]);
  return chain;
}

const codesOf = (rs: { codes: Uint8Array }[]) => rs.map((r) => [...r.codes]);

describe('commit pipeline', () => {
  it('commits blocks handed over all at once exactly as one at a time, across an MSP-changing config block', async () => {
    const chain = await scenario();
    const sequential = await openChannelLedger({ dataDir: await tempDir(), channelId: net.channelId });
    const one: { codes: Uint8Array }[] = [];
    for (const b of chain.blocks) one.push(await sequential.commitBlock(b));

    const piped = await openChannelLedger({
      dataDir: await tempDir(),
      channelId: net.channelId,
      signatureVerifier: pool,
    });
    await piped.commitBlock(chain.blocks[0]!);
    const before = pool.stats().workerVerified;
    // Blocks 1..4 queued together: 2..4 are staged while 1 commits, 3 and 4 under the old MSPs.
    const all = await Promise.all(chain.blocks.slice(1).map((b) => piped.commitBlock(b)));
    expect(pool.stats().workerVerified).toBeGreaterThan(before);

    const expected = [
      [TxValidationCode.BAD_CREATOR_SIGNATURE, TxValidationCode.VALID],
      [TxValidationCode.VALID],
      // Org3's creator and endorsement count only under the config of block 2.
      [TxValidationCode.VALID, TxValidationCode.VALID],
      [TxValidationCode.MVCC_READ_CONFLICT, TxValidationCode.DUPLICATE_TXID],
    ];
    expect(codesOf(one.slice(1))).toEqual(expected);
    expect(codesOf(all)).toEqual(expected);
    for (const l of [sequential, piped]) {
      expect(fromUtf8((await l.getState('basic', 'o3'))!.value)).toBe('ok');
      expect(fromUtf8((await l.getState('basic', 'a'))!.value)).toBe('2');
    }
    expect(await piped.stateHash()).toEqual(await sequential.stateHash());
    expect(piped.digest()).toEqual(sequential.digest());
    await sequential.close();
    await piped.close();
  });

  it('a bad block in the queue fails alone, in its place; the blocks around it commit', async () => {
    const chain = new TestChain(net);
    const ledger = await openChannelLedger({
      dataDir: await tempDir(),
      channelId: net.channelId,
      signatureVerifier: pool,
    });
    await ledger.commitBlock(chain.blocks[0]!);
    const t1 = await endorserTx(net, { creator: net.org1.client, endorsers: both(), writes: [put('k', '1')] });
    const t2 = await endorserTx(net, { creator: net.org1.client, endorsers: both(), writes: [put('k', '2')] });
    const b1 = await chain.cut([t1.envelope]);
    const b2 = await chain.cut([t2.envelope]);
    const good = decodeBlock(b2);
    const evil = await endorserTx(net, { creator: net.org1.client, endorsers: both(), writes: [put('k', 'evil')] });
    const tampered = encodeBlock({ ...good, data: [evil.envelope] });
    const garbage: Bytes = utf8('not a block');
    const results = await Promise.allSettled([
      ledger.commitBlock(b1),
      ledger.commitBlock(garbage),
      ledger.commitBlock(tampered),
      ledger.commitBlock(b2),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'LEDGER_MALFORMED_BLOCK' });
    expect((results[2] as PromiseRejectedResult).reason).toMatchObject({ code: 'LEDGER_DATA_HASH_MISMATCH' });
    expect(ledger.height()).toBe(3);
    expect(fromUtf8((await ledger.getState('basic', 'k'))!.value)).toBe('2');
    await ledger.close();
  });
});
