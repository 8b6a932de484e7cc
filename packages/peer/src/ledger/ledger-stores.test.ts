import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildBlock,
  computeBlockHash,
  decodeBlockHeader,
  encodeBlock,
  encodeChannelHeader,
  encodeEnvelope,
  encodeHeader,
  encodePayload,
  encodeSignatureHeader,
  fromUtf8,
  GENESIS_PREVIOUS_HASH,
  HeaderType,
  type Block,
  utf8,
} from '@loom/common';
import { afterEach, describe, expect, it } from 'vitest';
import type { KV } from './kv.js';
import { type LedgerStores, openLedgerStores } from './ledger-stores.js';
import { openLevelKV } from './level-kv.js';
import { createMemoryKV } from './memory-kv.js';

function envelope(txId: string, timestamp = 1000): Uint8Array {
  const channelHeader = encodeChannelHeader({
    type: HeaderType.ENDORSER_TRANSACTION,
    version: 0,
    channelId: 'ch1',
    txId,
    timestamp,
    extension: new Uint8Array(0),
  });
  const signatureHeader = encodeSignatureHeader({ creator: utf8('me'), nonce: new Uint8Array(24) });
  const payload = encodePayload({ header: encodeHeader({ channelHeader, signatureHeader }), data: utf8(txId) });
  return encodeEnvelope({ payload, signature: new Uint8Array([1, 2, 3]) });
}

/** A chain of encoded blocks, block i holding the given txIds. */
function chain(txIdsPerBlock: string[][]): Uint8Array[] {
  let prev: Uint8Array = GENESIS_PREVIOUS_HASH;
  return txIdsPerBlock.map((txIds, n) => {
    const block: Block = buildBlock(
      n,
      prev,
      txIds.map((t) => envelope(t)),
      new Uint8Array([0x80]),
    );
    prev = computeBlockHash(block);
    return encodeBlock(block);
  });
}

const put = (namespace: string, key: string, value: string, blockNum: number, txNum: number) => ({
  namespace,
  key,
  kind: 'put' as const,
  value: utf8(value),
  version: { blockNum, txNum },
});

/** Commits one block with its updates and history in ONE batch, the way the committer does. */
async function commit(
  stores: LedgerStores,
  blockBytes: Uint8Array,
  codes: number[],
  writes: { ns: string; key: string; value: string | null; txNum: number; txId: string }[],
) {
  const batch = stores.kv.batch();
  const { blockNum } = await stores.blocks.addBlock(batch, blockBytes, Uint8Array.from(codes));
  await stores.state.applyUpdates(
    batch,
    writes.map((w) =>
      w.value === null
        ? { namespace: w.ns, key: w.key, kind: 'delete' as const, version: { blockNum, txNum: w.txNum } }
        : put(w.ns, w.key, w.value, blockNum, w.txNum),
    ),
    blockNum + 1,
  );
  stores.history.addEntries(
    batch,
    writes.map((w) => ({
      namespace: w.ns,
      key: w.key,
      blockNum,
      txNum: w.txNum,
      txId: w.txId,
      timestamp: 1000 + blockNum,
      isDelete: w.value === null,
      value: w.value === null ? undefined : utf8(w.value),
    })),
  );
  await batch.write();
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('ledger stores on level', () => {
  const dirs: string[] = [];
  const open: KV[] = [];
  afterEach(async () => {
    for (const kv of open.splice(0)) await kv.close().catch(() => {});
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  async function openAt(dir: string) {
    const kv = await openLevelKV(dir);
    open.push(kv);
    return openLedgerStores(kv);
  }

  it('commits block, state, history and heights in one batch, all visible after reopening', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loom-ledger-'));
    dirs.push(dir);
    let stores = await openAt(dir);
    const blocks = chain([['tx0'], ['tx1a', 'tx1b'], ['tx2']]);
    await commit(stores, blocks[0]!, [0], [{ ns: 'cc', key: 'a', value: 'A0', txNum: 0, txId: 'tx0' }]);
    await commit(
      stores,
      blocks[1]!,
      [0, 11],
      [
        { ns: 'cc', key: 'a', value: 'A1', txNum: 0, txId: 'tx1a' },
        { ns: 'cc', key: 'b', value: 'B1', txNum: 0, txId: 'tx1a' },
      ],
    );
    await commit(stores, blocks[2]!, [0], [{ ns: 'cc', key: 'a', value: null, txNum: 0, txId: 'tx2' }]);
    await stores.close();
    open.length = 0;

    stores = await openAt(dir);
    expect(await stores.blocks.height()).toBe(3);
    expect(await stores.state.height()).toBe(3);
    expect(await stores.blocks.getBlockBytes(1)).toEqual(blocks[1]);
    const b1 = await stores.blocks.getBlock(1);
    expect(decodeBlockHeader(b1!.header).number).toBe(1);
    expect([...b1!.metadata.txValidationCodes]).toEqual([0, 11]);
    expect(await stores.blocks.getTxLocation('tx1b')).toEqual({ blockNum: 1, txNum: 1, validationCode: 11 });
    expect(decodeBlockHeader((await stores.blocks.getBlockByTxId('tx2'))!.header).number).toBe(2);
    expect(await stores.blocks.getTxLocation('nope')).toBeUndefined();
    expect(await stores.reader.isTxIdCommitted('tx0')).toBe(true);
    expect(await stores.reader.isTxIdCommitted('tx9')).toBe(false);
    expect((await collect(stores.blocks.iterateBlocks(1))).map((b) => b.number)).toEqual([1, 2]);

    expect(await stores.state.getState('cc', 'a')).toBeUndefined();
    expect(await stores.state.getVersion('cc', 'b')).toEqual({ blockNum: 1, txNum: 0 });
    expect(fromUtf8((await stores.reader.getState('cc', 'b'))!.value)).toBe('B1');

    const newest = await collect(stores.history.getHistoryForKey('cc', 'a'));
    expect(newest.map((h) => [h.blockNum, h.isDelete, fromUtf8(h.value), h.txId])).toEqual([
      [2, true, '', 'tx2'],
      [1, false, 'A1', 'tx1a'],
      [0, false, 'A0', 'tx0'],
    ]);
    const oldest = await collect(stores.history.getHistoryForKey('cc', 'a', { order: 'oldest-first', limit: 2 }));
    expect(oldest.map((h) => h.blockNum)).toEqual([0, 1]);
    expect(oldest[1]!.timestamp).toBe(1001);
  });

  it('a batch that is never written leaves no trace (crash before write)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loom-ledger-'));
    dirs.push(dir);
    const stores = await openAt(dir);
    const [b0] = chain([['tx0']]);
    const batch = stores.kv.batch();
    await stores.blocks.addBlock(batch, b0!, new Uint8Array([0]));
    await stores.state.applyUpdates(batch, [put('cc', 'k', 'v', 0, 0)], 1);
    // dropped: nothing was written
    expect(await stores.blocks.height()).toBe(0);
    expect(await stores.state.height()).toBe(0);
    expect(await stores.state.getState('cc', 'k')).toBeUndefined();
    expect(await stores.blocks.getBlockBytes(0)).toBeUndefined();
  });
});

describe('block store', () => {
  it('rejects blocks out of order and wrong numbers of codes; several blocks may share a batch', async () => {
    const stores = await openLedgerStores(createMemoryKV());
    const blocks = chain([['t0'], ['t1'], ['t2']]);
    await expect(stores.blocks.addBlock(stores.kv.batch(), blocks[1]!, new Uint8Array([0]))).rejects.toMatchObject({
      code: 'LEDGER_BLOCK_OUT_OF_ORDER',
    });
    await expect(stores.blocks.addBlock(stores.kv.batch(), blocks[0]!, new Uint8Array([]))).rejects.toMatchObject({
      code: 'LEDGER_BAD_VALIDATION_CODES',
    });
    const batch = stores.kv.batch();
    await stores.blocks.addBlock(batch, blocks[0]!, new Uint8Array([0]));
    await stores.blocks.addBlock(batch, blocks[1]!, new Uint8Array([0]));
    await batch.write();
    expect(await stores.blocks.height()).toBe(2);
    await expect(stores.blocks.addBlock(stores.kv.batch(), blocks[0]!, new Uint8Array([0]))).rejects.toMatchObject({
      code: 'LEDGER_BLOCK_OUT_OF_ORDER',
    });
  });

  it('keeps the first location of a duplicated txId', async () => {
    const stores = await openLedgerStores(createMemoryKV());
    const blocks = chain([['dup', 'dup'], ['dup']]);
    for (const [i, codes] of [[0, 9], [9]].entries()) {
      const batch = stores.kv.batch();
      await stores.blocks.addBlock(batch, blocks[i]!, Uint8Array.from(codes));
      await batch.write();
    }
    expect(await stores.blocks.getTxLocation('dup')).toEqual({ blockNum: 0, txNum: 0, validationCode: 0 });
  });
});
