import { fromUtf8, utf8 } from '@loom/common';
import { describe, expect, it } from 'vitest';
import type { KV } from '../kv.js';
import { createMemoryKV } from '../memory-kv.js';
import { openStateDB, type StateDB, type StateWrite } from '../state-db.js';
import type { Json } from './collation.js';
import { executeQuery, explainQuery, type RichQueryResponse } from './executor.js';
import { parseIndexDefinition } from './index-def.js';

let block = 1;
async function write(kv: KV, state: StateDB, docs: Record<string, Json | Uint8Array | null>): Promise<void> {
  const batch = kv.batch();
  const updates: StateWrite[] = Object.entries(docs).map(([key, d], txNum) =>
    d === null
      ? { namespace: 'cc', key, kind: 'delete', version: { blockNum: block, txNum } }
      : {
          namespace: 'cc',
          key,
          kind: 'put',
          value: d instanceof Uint8Array ? d : utf8(JSON.stringify(d)),
          version: { blockNum: block, txNum },
        },
  );
  await state.applyUpdates(batch, updates, ++block);
  await batch.write();
}

const keys = (r: RichQueryResponse) => r.results.map((x) => x.key);

const ownerIndex = parseIndexDefinition(
  '{"index":{"fields":["docType","owner"]},"ddoc":"indexOwnerDoc","name":"indexOwner","type":"json"}',
);
const sizeIndex = parseIndexDefinition({ index: { fields: ['size'] }, ddoc: 'indexSizeDoc', name: 'indexSize' });

async function fixture() {
  const kv = createMemoryKV();
  const state = await openStateDB(kv);
  await write(kv, state, {
    m1: { docType: 'marble', owner: 'tom', size: 50, color: 'blue' },
    m2: { docType: 'marble', owner: 'jerry', size: 10, color: 'red' },
    m3: { docType: 'marble', owner: 'tom', size: 20, color: 'red' },
    m4: { docType: 'marble', owner: 'ann', size: 30 },
    c1: { docType: 'car', owner: 'tom', size: 400 },
    bin: new Uint8Array([0, 1, 2]),
    arr: [1, 2, 3],
  });
  return { kv, state };
}

describe('rich query executor', () => {
  it('runs selectors over JSON values only, ordered by key without sort', async () => {
    const { state } = await fixture();
    const r = await executeQuery(state, 'cc', { selector: { owner: 'tom' } });
    expect(keys(r)).toEqual(['c1', 'm1', 'm3']);
    expect(r.metadata).toEqual({ fetchedRecordsCount: 3, bookmark: '' });
    expect(r.results[0]!.version).toEqual({ blockNum: 1, txNum: 4 });
    expect(keys(await executeQuery(state, 'cc', '{"selector":{}}'))).toEqual(['c1', 'm1', 'm2', 'm3', 'm4']);
    expect(keys(await executeQuery(state, 'cc', { selector: { _id: { $gt: 'm2' } } }))).toEqual(['m3', 'm4']);
    await expect(executeQuery(state, 'cc', { selector: { owner: { $bad: 1 } } })).rejects.toMatchObject({
      code: 'QUERY_INVALID',
      httpStatus: 400,
    });
  });

  it('sorts on several fields asc/desc, with limit, skip and projection', async () => {
    const { state } = await fixture();
    const q = { selector: { docType: 'marble' }, sort: [{ owner: 'desc' }, { size: 'asc' }] };
    expect(keys(await executeQuery(state, 'cc', q))).toEqual(['m3', 'm1', 'm2', 'm4']);
    expect(keys(await executeQuery(state, 'cc', { ...q, limit: 2, skip: 1 }))).toEqual(['m1', 'm2']);
    expect(keys(await executeQuery(state, 'cc', { selector: { docType: 'marble' }, sort: ['color'] }))).toEqual([
      'm4', // no color: sorts first
      'm1',
      'm2',
      'm3',
    ]);
    const p = await executeQuery(state, 'cc', { selector: { owner: 'ann' }, fields: ['owner', 'size'] });
    expect(JSON.parse(fromUtf8(p.results[0]!.value))).toEqual({ owner: 'ann', size: 30 });
  });

  it('pages with bookmarks: every match exactly once, in order', async () => {
    const kv = createMemoryKV();
    const state = await openStateDB(kv);
    const docs: Record<string, Json> = {};
    for (let i = 0; i < 37; i++) docs[`d${String(i).padStart(2, '0')}`] = { docType: 'x', n: i % 5, s: `v${i % 7}` };
    await write(kv, state, docs);
    await state.createIndex('cc', parseIndexDefinition({ index: { fields: ['docType', 'n'] }, name: 'byN' }));
    const query = { selector: { docType: 'x', n: { $gte: 1 } }, sort: [{ n: 'desc' }, { s: 'asc' }] };
    const all = keys(await executeQuery(state, 'cc', query));
    expect(all.length).toBe(37 - 8);
    for (const pageSize of [1, 4, 10, 29, 50]) {
      const seen: string[] = [];
      let bookmark = '';
      let pages = 0;
      do {
        const r = await executeQuery(state, 'cc', query, { pageSize, bookmark });
        expect(r.metadata.fetchedRecordsCount).toBe(r.results.length);
        seen.push(...keys(r));
        bookmark = r.metadata.bookmark;
        pages++;
      } while (bookmark !== '' && pages < 100);
      expect(seen).toEqual(all);
      // the bookmark may also travel inside the query, as CouchDB's does
    }
    const first = await executeQuery(state, 'cc', { ...query, limit: 3 });
    const next = await executeQuery(state, 'cc', { ...query, limit: 3, bookmark: first.metadata.bookmark });
    expect([...keys(first), ...keys(next)]).toEqual(all.slice(0, 6));
    await expect(executeQuery(state, 'cc', query, { bookmark: 'garbage!' })).rejects.toMatchObject({
      code: 'QUERY_INVALID',
    });
  });

  it('uses an index when it covers the leading fields (explain), with the same results as a full scan', async () => {
    const { kv, state } = await fixture();
    await state.createIndex('cc', ownerIndex);
    await state.createIndex('cc', sizeIndex);
    const cases: [object, string | null][] = [
      [{ docType: 'marble', owner: 'tom' }, 'indexOwner'],
      [{ docType: 'marble', owner: { $gt: 'b' } }, 'indexOwner'],
      [{ size: { $gte: 20, $lt: 400 } }, 'indexSize'],
      [{ owner: 'tom' }, null], // docType not required: the owner index cannot be used
      [{ docType: 'marble' }, null], // owner not required by the selector
      [{ docType: 'marble', owner: { $exists: false } }, null],
      [{ $or: [{ size: 10 }, { size: 20 }] }, null],
    ];
    for (const [selector, index] of cases) {
      const plan = explainQuery(state, 'cc', { selector });
      expect(plan.index?.name ?? null, JSON.stringify(selector)).toBe(index);
      const viaPlan = await executeQuery(state, 'cc', { selector });
      const viaScan = await executeQuery(state, 'cc', { selector }, { fullScan: true });
      expect(viaScan.plan.index).toBeNull();
      expect(keys(viaPlan)).toEqual(keys(viaScan));
    }
    const plan = explainQuery(state, 'cc', { selector: { docType: 'marble', owner: 'tom' } });
    expect(plan.equal).toEqual(['marble', 'tom']);
    expect(explainQuery(state, 'cc', { selector: { size: { $gt: 1 } }, sort: ['size'] }).usedForSort).toBe(true);

    // maintained on update and delete in the same batch as the state
    await write(kv, state, {
      m2: { docType: 'marble', owner: 'tom', size: 11 },
      m1: null,
      m5: { docType: 'marble', owner: 'tom' },
    });
    const r = await executeQuery(state, 'cc', { selector: { docType: 'marble', owner: 'tom' } });
    expect(r.plan.index?.name).toBe('indexOwner');
    expect(keys(r)).toEqual(['m2', 'm3', 'm5']);
    expect(keys(await executeQuery(state, 'cc', { selector: { size: { $lt: 15 } } }))).toEqual(['m2']);
    // two writes to one key in one batch leave one index entry
    const batch = kv.batch();
    await state.applyUpdates(
      batch,
      [
        {
          namespace: 'cc',
          key: 'm3',
          kind: 'put',
          value: utf8('{"docType":"marble","owner":"zed","size":1}'),
          version: { blockNum: 9, txNum: 0 },
        },
        {
          namespace: 'cc',
          key: 'm3',
          kind: 'put',
          value: utf8('{"docType":"marble","owner":"amy","size":2}'),
          version: { blockNum: 9, txNum: 1 },
        },
      ],
      10,
    );
    await batch.write();
    const byOwner = async (owner: string) =>
      keys(await executeQuery(state, 'cc', { selector: { docType: 'marble', owner } }));
    expect(await byOwner('zed')).toEqual([]);
    expect(await byOwner('amy')).toEqual(['m3']);
    expect(await byOwner('tom')).toEqual(['m2', 'm5']);

    // index definitions survive reopening
    const reopened = await openStateDB(kv);
    expect(
      reopened
        .indexes('cc')
        .map((d) => d.name)
        .sort(),
    ).toEqual(['indexOwner', 'indexSize']);
    expect(explainQuery(reopened, 'cc', { selector: { docType: 'car', owner: 'tom' } }).index?.name).toBe('indexOwner');
  });

  it('use_index: honoured when usable, else a warning in metadata and the query still runs', async () => {
    const { state } = await fixture();
    await state.createIndex('cc', ownerIndex);
    await state.createIndex('cc', sizeIndex);
    const sel = { docType: 'marble', owner: 'tom', size: { $gt: 0 } };
    const forced = await executeQuery(state, 'cc', { selector: sel, use_index: ['_design/indexSizeDoc', 'indexSize'] });
    expect(forced.plan.index?.name).toBe('indexSize');
    expect(forced.metadata.warning).toBeUndefined();
    expect(explainQuery(state, 'cc', { selector: sel, use_index: '_design/indexSizeDoc' }).index?.name).toBe(
      'indexSize',
    );
    const missing = await executeQuery(state, 'cc', { selector: sel, use_index: ['_design/nope', 'nope'] });
    expect(missing.metadata.warning).toMatch(/no matching index/);
    expect(missing.plan.index?.name).toBe('indexOwner');
    const unusable = await executeQuery(state, 'cc', {
      selector: { owner: 'tom' },
      use_index: '_design/indexOwnerDoc',
    });
    expect(unusable.metadata.warning).toMatch(/cannot be used/);
    expect(keys(unusable)).toEqual(['c1', 'm1', 'm3']);
    expect(keys(forced)).toEqual(keys(missing));
  });

  it('redefining an index with other fields rebuilds it; the same definition is a no-op', async () => {
    const { state } = await fixture();
    expect(await state.createIndex('cc', ownerIndex)).toEqual({ created: true });
    expect(await state.createIndex('cc', ownerIndex)).toEqual({ created: false });
    expect(await state.createIndex('cc', { ...ownerIndex, fields: ['color'] })).toEqual({ created: true });
    const r = await executeQuery(state, 'cc', { selector: { color: 'red' } });
    expect(r.plan.index?.name).toBe('indexOwner');
    expect(keys(r)).toEqual(['m2', 'm3']);
    expect(explainQuery(state, 'cc', { selector: { docType: 'marble', owner: 'tom' } }).index).toBeNull();
  });
});

// ---- property test: index and full scan give identical results on random data and selectors ----

function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('rich query property: index vs full scan', () => {
  const SEED = Number(process.env.LOOM_QUERY_SEED ?? 20261123);

  it(`identical results for random data, selectors and updates (seed ${SEED})`, async () => {
    const rnd = mulberry32(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const values: Json[] = [null, true, false, 0, 1, 2, -3, 2.5, 10, 'a', 'b', 'bb', 'c', '', [1], [1, 2], { x: 1 }];
    const fields = ['t', 'o', 'n', 'g.h'];
    const randomDoc = (): Json => {
      const d: Record<string, Json> = {};
      if (rnd() < 0.9) d.t = pick(['A', 'B', 'C']);
      if (rnd() < 0.8) d.o = pick(['x', 'y', 'z', 1, null]);
      if (rnd() < 0.8) d.n = pick(values);
      if (rnd() < 0.5) d.g = { h: pick(values) };
      return d;
    };
    const randomCond = (): Json => {
      const op = pick(['$eq', '$eq', '$gt', '$gte', '$lt', '$lte', '$ne', '$in', '$exists', 'range', 'implicit']);
      if (op === 'implicit') return pick(values);
      if (op === '$in') return { $in: [pick(values), pick(values)] };
      if (op === '$exists') return { $exists: rnd() < 0.7 };
      if (op === 'range') return { $gt: pick(values), $lte: pick(values) };
      return { [op]: pick(values) };
    };
    const randomSelector = (): Record<string, Json> => {
      const s: Record<string, Json> = {};
      if (rnd() < 0.7) s.t = rnd() < 0.8 ? pick(['A', 'B', 'C']) : randomCond();
      for (const f of fields.slice(1)) if (rnd() < 0.45) s[f] = randomCond();
      if (rnd() < 0.15) s.$or = [{ n: randomCond() }, { o: randomCond() }];
      return s;
    };

    const kv = createMemoryKV();
    const state = await openStateDB(kv);
    const docs: Record<string, Json> = {};
    for (let i = 0; i < 150; i++) docs[`k${i}`] = randomDoc();
    await write(kv, state, docs);
    const indexes = [
      { index: { fields: ['t', 'o'] }, ddoc: 'd1', name: 'to' },
      { index: { fields: ['n'] }, ddoc: 'd2', name: 'n' },
      { index: { fields: ['t', 'n', 'o'] }, ddoc: 'd3', name: 'tno' },
      { index: { fields: ['g.h'] }, ddoc: 'd4', name: 'gh' },
    ].map((d) => parseIndexDefinition(d));
    // half the indexes exist before the data changes, half are built over existing state later
    await state.createIndex('cc', indexes[0]!);
    await state.createIndex('cc', indexes[1]!);

    let usedIndex = 0;
    for (let round = 0; round < 6; round++) {
      const changes: Record<string, Json | null> = {};
      for (let i = 0; i < 40; i++) changes[`k${Math.floor(rnd() * 180)}`] = rnd() < 0.2 ? null : randomDoc();
      await write(kv, state, changes);
      if (round === 2) {
        await state.createIndex('cc', indexes[2]!);
        await state.createIndex('cc', indexes[3]!);
      }
      for (let q = 0; q < 40; q++) {
        const query: Record<string, Json> = { selector: randomSelector() };
        if (rnd() < 0.4) query.sort = [{ [pick(fields)]: pick(['asc', 'desc']) }];
        if (rnd() < 0.3) query.limit = 1 + Math.floor(rnd() * 10);
        if (rnd() < 0.2) query.skip = Math.floor(rnd() * 5);
        const label = JSON.stringify(query);
        const scan = keys(await executeQuery(state, 'cc', query, { fullScan: true }));
        const auto = await executeQuery(state, 'cc', query);
        if (auto.plan.index !== null) usedIndex++;
        expect(keys(auto), `seed ${SEED} ${label}`).toEqual(scan);
        for (const def of state.indexes('cc')) {
          const forced = await executeQuery(state, 'cc', { ...query, use_index: [def.ddoc, def.name] });
          expect(keys(forced), `seed ${SEED} ${label} use_index ${def.name}`).toEqual(scan);
        }
      }
    }
    expect(usedIndex).toBeGreaterThan(40);
  });
});
