import { describe, expect, it } from 'vitest';
import { compareJson, encodeCollationKey, type Json } from './collation.js';
import { compareBytes } from '../keys.js';
import { parseIndexDefinition, indexDefinitionsFromPackage } from './index-def.js';
import { parseQuery, project } from './query.js';
import { matches, parseSelector } from './selector.js';

const m = (selector: object, doc: Json) => matches(parseSelector(selector), doc);

describe('Mango selector matching', () => {
  const doc = {
    docType: 'asset',
    owner: 'alice',
    size: 10,
    color: 'blue',
    tags: ['a', 'b', 'c'],
    nested: { x: 1, deep: { y: 'z' } },
    parts: [
      { name: 'wheel', qty: 4 },
      { name: 'door', qty: 2 },
    ],
    'dotted.key': true,
    nothing: null,
  };

  it('implicit $eq and $and; explicit comparison operators', () => {
    expect(m({ docType: 'asset', owner: 'alice' }, doc)).toBe(true);
    expect(m({ docType: 'asset', owner: 'bob' }, doc)).toBe(false);
    expect(m({ size: { $eq: 10 } }, doc)).toBe(true);
    expect(m({ size: { $ne: 10 } }, doc)).toBe(false);
    expect(m({ size: { $gt: 9, $lt: 11 } }, doc)).toBe(true);
    expect(m({ size: { $gte: 10, $lte: 10 } }, doc)).toBe(true);
    expect(m({ size: { $gt: 10 } }, doc)).toBe(false);
    expect(m({ size: { $lt: 10 } }, doc)).toBe(false);
    expect(m({ nothing: null }, doc)).toBe(true);
    expect(m({ tags: ['a', 'b', 'c'] }, doc)).toBe(true); // whole-array equality
    expect(m({ tags: 'a' }, doc)).toBe(false); // equality is not membership
  });

  it('compares across types by CouchDB collation', () => {
    expect(m({ owner: { $gt: 5 } }, doc)).toBe(true); // strings > numbers
    expect(m({ size: { $lt: 'a' } }, doc)).toBe(true);
    expect(m({ nothing: { $lt: false } }, doc)).toBe(true);
    const ordered: Json[] = [null, false, true, -1, 0, 2.5, 10, '', 'A', 'a', 'b', [], [1], [1, 2], [2], {}, { a: 1 }];
    for (let i = 0; i < ordered.length; i++) {
      for (let j = 0; j < ordered.length; j++) {
        const c = Math.sign(compareJson(ordered[i]!, ordered[j]!));
        expect(c).toBe(Math.sign(i - j));
        expect(Math.sign(compareBytes(encodeCollationKey(ordered[i]!), encodeCollationKey(ordered[j]!)))).toBe(c);
      }
    }
    expect(compareJson(-0, 0)).toBe(0);
    expect(encodeCollationKey(-0)).toEqual(encodeCollationKey(0));
  });

  it('$in, $nin (with array fields), $exists, missing fields', () => {
    expect(m({ color: { $in: ['red', 'blue'] } }, doc)).toBe(true);
    expect(m({ color: { $in: ['red'] } }, doc)).toBe(false);
    expect(m({ tags: { $in: ['z', 'c'] } }, doc)).toBe(true); // any element
    expect(m({ color: { $nin: ['red'] } }, doc)).toBe(true);
    expect(m({ tags: { $nin: ['c'] } }, doc)).toBe(false);
    expect(m({ owner: { $exists: true } }, doc)).toBe(true);
    expect(m({ missing: { $exists: false } }, doc)).toBe(true);
    expect(m({ missing: { $exists: true } }, doc)).toBe(false);
    // a missing field fails everything but {$exists: false}, as in CouchDB
    expect(m({ missing: { $ne: 1 } }, doc)).toBe(false);
    expect(m({ missing: { $nin: [1] } }, doc)).toBe(false);
    // ... while $not negates the whole condition
    expect(m({ missing: { $not: { $eq: 1 } } }, doc)).toBe(true);
  });

  it('$and, $or, $nor, $not at top level and nested', () => {
    expect(m({ $or: [{ owner: 'bob' }, { size: 10 }] }, doc)).toBe(true);
    expect(m({ $or: [{ owner: 'bob' }, { size: 11 }] }, doc)).toBe(false);
    expect(m({ $and: [{ owner: 'alice' }, { $or: [{ color: 'red' }, { color: 'blue' }] }] }, doc)).toBe(true);
    expect(m({ $nor: [{ owner: 'bob' }, { size: 11 }] }, doc)).toBe(true);
    expect(m({ $nor: [{ owner: 'alice' }] }, doc)).toBe(false);
    expect(m({ $not: { owner: 'alice' } }, doc)).toBe(false);
    expect(m({ size: { $or: [{ $lt: 5 }, { $gt: 9 }] } }, doc)).toBe(true);
    expect(m({}, doc)).toBe(true);
  });

  it('nested fields: dotted paths, nested objects, array indexes, escaped dots', () => {
    expect(m({ 'nested.x': 1 }, doc)).toBe(true);
    expect(m({ nested: { x: 1 } }, doc)).toBe(true);
    expect(m({ nested: { deep: { y: 'z' } } }, doc)).toBe(true);
    expect(m({ 'nested.deep.y': { $regex: '^z$' } }, doc)).toBe(true);
    expect(m({ 'nested.x': { $gt: 1 } }, doc)).toBe(false);
    expect(m({ 'tags.1': 'b' }, doc)).toBe(true);
    expect(m({ 'parts.0.name': 'wheel' }, doc)).toBe(true);
    expect(m({ 'dotted\\.key': true }, doc)).toBe(true);
    expect(m({ 'owner.x': 'a' }, doc)).toBe(false);
  });

  it('$regex, $elemMatch, $allMatch, $all, $size, $type, $mod', () => {
    expect(m({ owner: { $regex: '^al' } }, doc)).toBe(true);
    expect(m({ owner: { $regex: '^b' } }, doc)).toBe(false);
    expect(m({ size: { $regex: '1' } }, doc)).toBe(false); // only strings
    expect(m({ parts: { $elemMatch: { name: 'door', qty: { $gte: 2 } } } }, doc)).toBe(true);
    expect(m({ parts: { $elemMatch: { name: 'door', qty: { $gt: 2 } } } }, doc)).toBe(false);
    expect(m({ tags: { $elemMatch: { $eq: 'b' } } }, doc)).toBe(true);
    expect(m({ parts: { $allMatch: { qty: { $gt: 1 } } } }, doc)).toBe(true);
    expect(m({ parts: { $allMatch: { qty: { $gt: 2 } } } }, doc)).toBe(false);
    expect(m({ tags: { $all: ['c', 'a'] } }, doc)).toBe(true);
    expect(m({ tags: { $all: ['c', 'x'] } }, doc)).toBe(false);
    expect(m({ tags: { $size: 3 } }, doc)).toBe(true);
    expect(m({ nested: { $type: 'object' } }, doc)).toBe(true);
    expect(m({ size: { $type: 'string' } }, doc)).toBe(false);
    expect(m({ size: { $mod: [3, 1] } }, doc)).toBe(true);
  });

  it('rejects bad selectors and queries with QUERY_INVALID (400)', () => {
    const bad: unknown[] = [
      [],
      'x',
      { a: { $foo: 1 } },
      { $and: {} },
      { $or: [] },
      { $or: [1] },
      { a: { $in: 1 } },
      { a: { $exists: 'yes' } },
      { a: { $regex: '(' } },
      { a: { $size: -1 } },
      { a: { $type: 'date' } },
      { a: { $mod: [0, 1] } },
      { $eq: 1 },
      { 'a..b': 1 },
      { a: { $elemMatch: 3 } },
      { $not: [] },
    ];
    for (const s of bad) {
      expect(() => parseSelector(s), JSON.stringify(s)).toThrow(
        expect.objectContaining({ code: 'QUERY_INVALID', httpStatus: 400 }),
      );
    }
    for (const q of [
      'not json',
      '{}',
      { selector: {}, sort: 'a' },
      { selector: {}, sort: [{ a: 'up' }] },
      { selector: {}, limit: -1 },
      { selector: {}, skip: 1.5 },
      { selector: {}, use_index: [] },
      { selector: {}, fields: [1] },
      { selector: {}, frobnicate: true },
    ]) {
      expect(() => parseQuery(q), JSON.stringify(q)).toThrow(expect.objectContaining({ code: 'QUERY_INVALID' }));
    }
  });

  it('parses queries: sort forms, use_index forms, projection', () => {
    const q = parseQuery({
      selector: { a: 1 },
      sort: [{ size: 'desc' }, 'owner'],
      use_index: ['_design/indexOwnerDoc', 'indexOwner'],
      limit: 5,
      skip: 1,
    });
    expect(q.sort.map((s) => [s.field, s.desc])).toEqual([
      ['size', true],
      ['owner', false],
    ]);
    expect(q.useIndex).toEqual({ ddoc: 'indexOwnerDoc', name: 'indexOwner' });
    expect(parseQuery('{"selector":{},"use_index":"_design/x"}').useIndex).toEqual({ ddoc: 'x', name: undefined });
    expect(project(doc, ['owner', 'nested.deep.y', 'nope'])).toEqual({ owner: 'alice', nested: { deep: { y: 'z' } } });
  });
});

describe('index definitions', () => {
  it('parses Fabric index files and finds them in a chaincode package', () => {
    const text = '{"index":{"fields":["docType","owner"]},"ddoc":"indexOwnerDoc","name":"indexOwner","type":"json"}';
    expect(parseIndexDefinition(text)).toEqual({
      ddoc: 'indexOwnerDoc',
      name: 'indexOwner',
      fields: ['docType', 'owner'],
    });
    expect(parseIndexDefinition({ index: { fields: [{ size: 'desc' }] }, name: 'bySize' })).toEqual({
      ddoc: 'bySize',
      name: 'bySize',
      fields: ['size'],
    });
    for (const bad of [
      '{',
      { index: { fields: [] }, name: 'x' },
      { index: { fields: ['a'] } },
      { index: { fields: ['a'] }, name: 'x', type: 'text' },
    ]) {
      expect(() => parseIndexDefinition(bad)).toThrow(expect.objectContaining({ code: 'QUERY_INVALID' }));
    }
    const found = indexDefinitionsFromPackage(
      new Map([
        ['META-INF/statedb/couchdb/indexes/indexOwner.json', text],
        ['META-INF/statedb/couchdb/collections/coll1/indexes/i.json', '{"index":{"fields":["a"]},"name":"i"}'],
        ['src/index.js', 'ignored'],
      ]),
    );
    expect(found.map((f) => [f.collection, f.definition.name])).toEqual([
      [undefined, 'indexOwner'],
      ['coll1', 'i'],
    ]);
  });
});
