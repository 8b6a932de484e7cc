import { fromUtf8, utf8 } from '@loom/common';
import { describe, expect, it } from 'vitest';
import { compareKeys } from '../validation/state-reader.js';
import { createCompositeKey, isCompositeKey, partialCompositeKeyRange, splitCompositeKey } from './composite-key.js';
import { createMemoryKV } from './memory-kv.js';
import {
  getStateByPartialCompositeKey,
  getStateByPartialCompositeKeyWithPagination,
  getStateByRange,
  getStateByRangeWithPagination,
} from './range-query.js';
import {
  hashedNamespace,
  openStateDB,
  privateNamespace,
  type StateDB,
  type StateWrite,
  stateCacheKey,
} from './state-db.js';

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function withKeys(keys: string[], ns = 'cc'): Promise<StateDB> {
  const kv = createMemoryKV();
  const state = await openStateDB(kv);
  const batch = kv.batch();
  await state.applyUpdates(
    batch,
    keys.map((key, i) => ({
      namespace: ns,
      key,
      kind: 'put',
      value: utf8(`v:${key}`),
      version: { blockNum: 1, txNum: i },
    })),
    2,
  );
  await batch.write();
  return state;
}

const keysOf = async (it: AsyncIterable<{ key: string }>) => (await collect(it)).map((e) => e.key);

describe('state DB', () => {
  it('range scans are [start, end) in code point order; empty end = to the end of the namespace', async () => {
    const keys = ['a', 'b', 'c', 'd', '\uffff', '\u{1F600}', 'ab'];
    const state = await withKeys(keys);
    const other = await openStateDB(createMemoryKV());
    expect(await keysOf(state.rangeScan('cc', 'b', 'd'))).toEqual(['b', 'c']);
    expect(await keysOf(state.rangeScan('cc', 'a', 'b'))).toEqual(['a', 'ab']);
    expect(await keysOf(state.rangeScan('cc', '', ''))).toEqual([...keys].sort(compareKeys));
    expect(await keysOf(state.rangeScan('cc', 'd', ''))).toEqual(['d', '\uffff', '\u{1F600}']);
    expect(await keysOf(state.rangeScan('cc', 'd', 'a'))).toEqual([]);
    expect(await keysOf(state.rangeScan('cc', '', '', { reverse: true, limit: 2 }))).toEqual(['\u{1F600}', '\uffff']);
    expect(await keysOf(state.rangeScan('c', '', ''))).toEqual([]); // namespace "c" is not a prefix of "cc"
    expect(await keysOf(other.rangeScan('cc', '', ''))).toEqual([]);
  });

  it('puts, deletes and metadata updates: versions, metadata kept or replaced, savepoint', async () => {
    const kv = createMemoryKV();
    const state = await openStateDB(kv);
    const vp = new Map([['VALIDATION_PARAMETER', utf8('policy')]]);
    const v = (blockNum: number, txNum: number) => ({ blockNum, txNum });
    const apply = async (updates: StateWrite[], height: number) => {
      const batch = kv.batch();
      await state.applyUpdates(batch, updates, height);
      await batch.write();
    };
    await apply(
      [
        { namespace: 'cc', key: 'k', kind: 'put', value: utf8('1'), version: v(0, 0) },
        { namespace: 'cc', key: 'k', kind: 'metadata', metadata: vp, version: v(0, 1) },
        { namespace: 'cc', key: 'ghost', kind: 'metadata', metadata: vp, version: v(0, 1) },
      ],
      1,
    );
    expect(await state.getVersion('cc', 'k')).toEqual(v(0, 1));
    expect(fromUtf8((await state.getMetadata('cc', 'k'))!.get('VALIDATION_PARAMETER')!)).toBe('policy');
    expect(await state.getState('cc', 'ghost')).toBeUndefined();
    expect(await state.height()).toBe(1);

    await apply([{ namespace: 'cc', key: 'k', kind: 'put', value: utf8('2'), version: v(1, 0) }], 2);
    const s = await state.getState('cc', 'k');
    expect(fromUtf8(s!.value)).toBe('2');
    expect(s!.metadata.has('VALIDATION_PARAMETER')).toBe(true); // a put keeps the metadata
    await apply([{ namespace: 'cc', key: 'k', kind: 'delete', version: v(2, 0) }], 3);
    expect(await state.getState('cc', 'k')).toBeUndefined();
    expect(await state.getMetadata('cc', 'k')).toBeUndefined();
    await apply([{ namespace: 'cc', key: 'k', kind: 'put', value: utf8('3'), version: v(3, 0) }], 4);
    expect(await state.getMetadata('cc', 'k')).toBeUndefined(); // a delete cleared it
    expect(await state.height()).toBe(4);
  });

  it('puts a hashed private write (collection set) into ns$$h<coll>; private values into ns$$p<coll>', async () => {
    const kv = createMemoryKV();
    const state = await openStateDB(kv);
    const batch = kv.batch();
    await state.applyUpdates(
      batch,
      [
        {
          namespace: 'cc',
          collection: 'coll',
          key: 'abcd',
          kind: 'put',
          value: utf8('h'),
          version: { blockNum: 0, txNum: 0 },
        },
        {
          namespace: privateNamespace('cc', 'coll'),
          key: 'k',
          kind: 'put',
          value: utf8('p'),
          version: { blockNum: 0, txNum: 0 },
        },
      ],
      1,
    );
    await batch.write();
    expect(hashedNamespace('cc', 'coll')).toBe('cc$$hcoll');
    expect(fromUtf8((await state.getState('cc$$hcoll', 'abcd'))!.value)).toBe('h');
    expect(fromUtf8((await state.getState('cc$$pcoll', 'k'))!.value)).toBe('p');
    expect(await state.getState('cc', 'abcd')).toBeUndefined();
  });

  it('rejects namespaces with NUL and keys that are not valid UTF-16', async () => {
    const state = await openStateDB(createMemoryKV());
    await expect(state.getState('a\u0000b', 'k')).rejects.toMatchObject({ code: 'LEDGER_INVALID_KEY' });
    await expect(state.getState('cc', '\ud800')).rejects.toMatchObject({ code: 'LEDGER_INVALID_KEY' });
  });
});

describe('composite keys', () => {
  it('create and split in Fabric format', () => {
    const k = createCompositeKey('owner~name', ['alice', 'car1']);
    expect(k).toBe('\u0000owner~name\u0000alice\u0000car1\u0000');
    expect(isCompositeKey(k)).toBe(true);
    expect(splitCompositeKey(k)).toEqual({ objectType: 'owner~name', attributes: ['alice', 'car1'] });
    expect(splitCompositeKey(createCompositeKey('t', []))).toEqual({ objectType: 't', attributes: [] });
    expect(() => createCompositeKey('t', ['a\u0000b'])).toThrow(/not allowed/);
    expect(() => createCompositeKey('t', ['\u{10FFFF}'])).toThrow(/not allowed/);
    expect(partialCompositeKeyRange('t', ['a']).endKey).toBe('\u0000t\u0000a\u0000\u{10FFFF}');
  });

  it('partial composite key queries return exactly the extensions; simple ranges skip composite keys', async () => {
    const ck = (...a: string[]) => createCompositeKey('color~name', a);
    const keys = [ck('blue', 'c1'), ck('blue', 'c2'), ck('bluegreen', 'c3'), ck('red', 'c4'), 'plain1', 'plain2'];
    keys.push(createCompositeKey('other', ['blue']), '\uffffz', '\u{1F600}');
    const state = await withKeys(keys);
    const attrs = async (it: AsyncIterable<{ key: string }>) =>
      (await keysOf(it)).map((k) => splitCompositeKey(k).attributes.join('/'));
    expect(await attrs(getStateByPartialCompositeKey(state, 'cc', 'color~name', ['blue']))).toEqual([
      'blue/c1',
      'blue/c2',
    ]);
    expect(await attrs(getStateByPartialCompositeKey(state, 'cc', 'color~name', []))).toEqual([
      'blue/c1',
      'blue/c2',
      'bluegreen/c3',
      'red/c4',
    ]);
    expect(await keysOf(getStateByRange(state, 'cc', '', ''))).toEqual(['plain1', 'plain2', '\uffffz', '\u{1F600}']);
    expect(await keysOf(getStateByRange(state, 'cc', 'plain2', ''))).toEqual(['plain2', '\uffffz', '\u{1F600}']);
    expect(() => getStateByRange(state, 'cc', ck('blue'), '')).toThrow(/U\+0000/);
  });

  it('paginated queries yield every key exactly once across pages, for every page size', async () => {
    const keys: string[] = [];
    for (let i = 0; i < 23; i++) keys.push(`k${String(i).padStart(3, '0')}`);
    for (let i = 0; i < 17; i++) keys.push(createCompositeKey('t', [i % 2 === 0 ? 'even' : 'odd', String(i)]));
    const state = await withKeys(keys);
    for (const pageSize of [1, 2, 5, 7, 23, 100]) {
      const seen: string[] = [];
      let bookmark = '';
      let pages = 0;
      do {
        const page = await getStateByRangeWithPagination(state, 'cc', 'k', '', pageSize, bookmark);
        expect(page.metadata.fetchedRecordsCount).toBe(page.results.length);
        expect(page.results.length).toBeLessThanOrEqual(pageSize);
        seen.push(...page.results.map((e) => e.key));
        bookmark = page.metadata.bookmark;
        pages++;
      } while (bookmark !== '' && pages < 100);
      expect(seen).toEqual(keys.slice(0, 23));
      expect(pages).toBe(Math.max(1, Math.ceil(23 / pageSize)));

      const seenC: string[] = [];
      bookmark = '';
      do {
        const page = await getStateByPartialCompositeKeyWithPagination(state, 'cc', 't', ['even'], pageSize, bookmark);
        seenC.push(...page.results.map((e) => splitCompositeKey(e.key).attributes[1]!));
        bookmark = page.metadata.bookmark;
      } while (bookmark !== '');
      expect(seenC.sort()).toEqual(['0', '10', '12', '14', '16', '2', '4', '6', '8']);
    }
    await expect(getStateByRangeWithPagination(state, 'cc', '', '', 0)).rejects.toMatchObject({
      code: 'QUERY_INVALID',
    });
  });
});

describe('applyUpdates with entries the caller already read', () => {
  it('uses the given entries (metadata carried over) and reads only the keys not given', async () => {
    const kv = createMemoryKV();
    const state = await openStateDB(kv);
    const seed = kv.batch();
    await state.applyUpdates(
      seed,
      [
        { namespace: 'cc', key: 'a', kind: 'put', value: utf8('a0'), version: { blockNum: 1, txNum: 0 } },
        { namespace: 'cc', key: 'b', kind: 'put', value: utf8('b0'), version: { blockNum: 1, txNum: 1 } },
        {
          namespace: 'cc',
          key: 'b',
          kind: 'metadata',
          metadata: new Map([['VALIDATION_PARAMETER', utf8('p')]]),
          version: { blockNum: 1, txNum: 2 },
        },
      ],
      2,
    );
    await seed.write();
    const bNow = await state.getState('cc', 'b');
    // 'a' is said to be absent (as a caller that just read it would say); 'b' is given as read; 'c' is read here.
    const known = new Map([
      [stateCacheKey('cc', 'a'), undefined],
      [stateCacheKey('cc', 'b'), bNow],
    ]);
    const batch = kv.batch();
    await state.applyUpdates(
      batch,
      [
        { namespace: 'cc', key: 'b', kind: 'put', value: utf8('b1'), version: { blockNum: 2, txNum: 0 } },
        { namespace: 'cc', key: 'a', kind: 'metadata', metadata: new Map(), version: { blockNum: 2, txNum: 1 } },
        { namespace: 'cc', key: 'c', kind: 'put', value: utf8('c1'), version: { blockNum: 2, txNum: 2 } },
      ],
      3,
      known,
    );
    await batch.write();
    const b = await state.getState('cc', 'b');
    expect(fromUtf8(b!.value)).toBe('b1');
    expect(fromUtf8(b!.metadata.get('VALIDATION_PARAMETER')!)).toBe('p');
    // A metadata write to a key given as absent is dropped: the given entry was used, not a read.
    expect((await state.getState('cc', 'a'))!.version).toEqual({ blockNum: 1, txNum: 0 });
    expect(fromUtf8((await state.getState('cc', 'c'))!.value)).toBe('c1');
    expect(await state.height()).toBe(3);
  });
});
