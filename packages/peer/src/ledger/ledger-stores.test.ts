import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildBlock,
  concatBytes,
  computeBlockHash,
  decodeBlockHeader,
  encodeBlock,
  encodeValue,
  fromUtf8,
  GENESIS_PREVIOUS_HASH,
  type Block,
  utf8,
} from '@loom/common';
import { afterEach, describe, expect, it } from 'vitest';
import { historyKey } from './keys.js';
import type { KV } from './kv.js';
import { type LedgerStores, openLedgerStores } from './ledger-stores.js';
import { openLevelKV } from './level-kv.js';
import { createMemoryKV } from './memory-kv.js';
import { type TestWrite, testEndorserEnvelope } from './test-envelopes.js';

type Write = TestWrite;

const envelope = (txId: string, writes: Write[] = [], timestamp = 1000) =>
  testEndorserEnvelope({ txId, writes, timestamp });

/** A chain of encoded blocks; block n holds the given transactions (a txId, or a txId with its writes), at timestamp 1000 + n. */
function chain(txsPerBlock: (string | { txId: string; writes: Write[] })[][]): Uint8Array[] {
  let prev: Uint8Array = GENESIS_PREVIOUS_HASH;
  return txsPerBlock.map((txs, n) => {
    const block: Block = buildBlock(
      n,
      prev,
      txs.map((t) => (typeof t === 'string' ? envelope(t, [], 1000 + n) : envelope(t.txId, t.writes, 1000 + n))),
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
    writes.map((w) => ({ namespace: w.ns, key: w.key, blockNum, txNum: w.txNum })),
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
    const blocks = chain([
      [{ txId: 'tx0', writes: [{ ns: 'cc', key: 'a', value: 'A0' }] }],
      [
        {
          txId: 'tx1a',
          writes: [
            { ns: 'cc', key: 'a', value: 'A1' },
            { ns: 'cc', key: 'b', value: 'B1' },
          ],
        },
        'tx1b',
      ],
      [{ txId: 'tx2', writes: [{ ns: 'cc', key: 'a', value: null }] }],
    ]);
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
    expect(Buffer.from((await stores.blocks.getBlockBytes(1))!).equals(blocks[1]!)).toBe(true);
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

  it('history entries hold only their key; the value, txId and timestamp come from the block; older entries with values still read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loom-ledger-'));
    dirs.push(dir);
    const stores = await openAt(dir);
    const blocks = chain([
      [
        {
          txId: 'w0',
          writes: [
            { ns: 'cc', key: 'k', value: 'first' },
            { ns: 'other', key: 'k', value: 'elsewhere' },
            { ns: 'cc', key: 'k', value: 'last' },
          ],
        },
      ],
      [{ txId: 'w1', writes: [{ ns: 'cc', key: 'j', value: 'J' }] }],
    ]);
    await commit(stores, blocks[0]!, [0], [{ ns: 'cc', key: 'k', value: 'last', txNum: 0, txId: 'w0' }]);
    // An entry as an earlier version wrote it: [txId, timestamp, isDelete, value].
    const historyKv = stores.kv.sublevel('history');
    const legacy = historyKv.batch();
    legacy.put(historyKey('cc', 'k', 0, 5), encodeValue(['old-tx', 77, false, utf8('old')]));
    await legacy.write();
    // The index's own bytes: the key alone.
    const raw = await historyKv.get(historyKey('cc', 'k', 0, 0));
    expect(raw?.length).toBe(0);

    const got = await collect(stores.history.getHistoryForKey('cc', 'k', { order: 'oldest-first' }));
    expect(got.map((h) => [h.blockNum, h.txNum, h.txId, h.timestamp, h.isDelete, fromUtf8(h.value)])).toEqual([
      [0, 0, 'w0', 1000, false, 'last'],
      [0, 5, 'old-tx', 77, false, 'old'],
    ]);

    // An entry whose transaction does not write the key is corruption, reported as such.
    await commit(stores, blocks[1]!, [0], [{ ns: 'cc', key: 'not-written', value: 'x', txNum: 0, txId: 'w1' }]);
    await expect(collect(stores.history.getHistoryForKey('cc', 'not-written'))).rejects.toMatchObject({
      code: 'LEDGER_CORRUPT',
    });
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

  it('indexes a hex txId by its 32 bytes, any other txId by its text; a ledger begun with text keys keeps them', async () => {
    const hexId = 'ab'.repeat(32);
    const upper = 'AB'.repeat(32);
    const blocks = chain([[hexId, 'plain'], [upper]]);
    const addAll = async (stores: LedgerStores) => {
      for (const [i, codes] of [[0, 0], [0]].entries()) {
        const batch = stores.kv.batch();
        await stores.blocks.addBlock(batch, blocks[i]!, Uint8Array.from(codes));
        await batch.write();
      }
    };
    const kv = createMemoryKV();
    const stores = await openLedgerStores(kv);
    await addAll(stores);
    const raw = kv.sublevel('blocks');
    expect(await raw.get(concatBytes(utf8('x'), Buffer.from(hexId, 'hex')))).toBeDefined();
    expect(await raw.get(concatBytes(utf8('t'), utf8(hexId)))).toBeUndefined();
    expect(await raw.get(concatBytes(utf8('t'), utf8('plain')))).toBeDefined();
    // Upper-case hex is another txId, not the same 32 bytes.
    expect(await stores.blocks.getTxLocation(hexId)).toEqual({ blockNum: 0, txNum: 0, validationCode: 0 });
    expect(await stores.blocks.getTxLocation(upper)).toEqual({ blockNum: 1, txNum: 0, validationCode: 0 });
    expect(await stores.blocks.getTxLocations(['plain', hexId, 'nope', 'cd'.repeat(32)])).toEqual([
      { blockNum: 0, txNum: 1, validationCode: 0 },
      { blockNum: 0, txNum: 0, validationCode: 0 },
      undefined,
      undefined,
    ]);
    expect(await stores.reader.isTxIdCommitted(hexId)).toBe(true);

    // A ledger written before: text keys for every txId and no 'v' marker. Reopened, it is read,
    // and extended, with text keys.
    const oldKv = createMemoryKV();
    const old = await openLedgerStores(oldKv);
    await addAll(old);
    const oldRaw = oldKv.sublevel('blocks');
    const loc = await oldRaw.get(concatBytes(utf8('x'), Buffer.from(hexId, 'hex')));
    const rewrite = oldRaw.batch();
    rewrite.del(concatBytes(utf8('x'), Buffer.from(hexId, 'hex')));
    rewrite.del(utf8('v'));
    rewrite.put(concatBytes(utf8('t'), utf8(hexId)), loc!);
    await rewrite.write();
    const reopened = await openLedgerStores(oldKv);
    expect(await reopened.blocks.getTxLocation(hexId)).toEqual({ blockNum: 0, txNum: 0, validationCode: 0 });
    const next = chain([[hexId, 'plain'], [upper], ['ef'.repeat(32)]])[2]!;
    const batch = reopened.kv.batch();
    await reopened.blocks.addBlock(batch, next, Uint8Array.from([0]));
    await batch.write();
    expect(await oldRaw.get(concatBytes(utf8('t'), utf8('ef'.repeat(32))))).toBeDefined();
    expect(await reopened.blocks.getTxLocation('ef'.repeat(32))).toEqual({ blockNum: 2, txNum: 0, validationCode: 0 });
  });
});
