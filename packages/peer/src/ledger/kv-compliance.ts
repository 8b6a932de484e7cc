/**
 * One behaviour suite for every KV implementation (libp2p interface-compliance style): each
 * implementation's test file calls `kvComplianceSuite` with a factory.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { IterateOptions, KV } from './kv.js';

const te = new TextEncoder();
const td = new TextDecoder();
const b = (s: string) => te.encode(s);
const s = (x: Uint8Array) => td.decode(x);

export interface KVFactory {
  /** A fresh, empty store. */
  open(): Promise<KV>;
  /** Closes and reopens the store on the same data, when the implementation persists. */
  reopen?(kv: KV): Promise<KV>;
  cleanup?(): Promise<void>;
}

async function collect(kv: KV, o?: IterateOptions): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for await (const [k, v] of kv.iterate(o)) out.push([s(k), s(v)]);
  return out;
}

export function kvComplianceSuite(name: string, factory: KVFactory): void {
  describe(`KV compliance: ${name}`, () => {
    let kv: KV;
    beforeEach(async () => {
      kv = await factory.open();
    });
    afterEach(async () => {
      await kv.close();
      await factory.cleanup?.();
    });

    async function fill(store: KV, keys: string[]) {
      const batch = store.batch();
      for (const k of keys) batch.put(b(k), b(`v-${k}`));
      await batch.write();
    }

    it('gets what a batch put, undefined for missing keys, and getMany keeps order', async () => {
      await fill(kv, ['a', 'b']);
      expect(s((await kv.get(b('a')))!)).toBe('v-a');
      expect(await kv.get(b('zz'))).toBeUndefined();
      const many = await kv.getMany([b('b'), b('nope'), b('a')]);
      expect(many.map((x) => (x === undefined ? undefined : s(x)))).toEqual(['v-b', undefined, 'v-a']);
      expect(await kv.getMany([])).toEqual([]);
    });

    it('writes nothing until write(), then everything; later ops in a batch win', async () => {
      const batch = kv.batch();
      batch.put(b('k'), b('1')).put(b('k'), b('2')).put(b('d'), b('x')).del(b('d'));
      expect(batch.length).toBe(4);
      expect(await kv.get(b('k'))).toBeUndefined();
      await batch.write();
      expect(s((await kv.get(b('k')))!)).toBe('2');
      expect(await kv.get(b('d'))).toBeUndefined();
      await expect(batch.write()).rejects.toMatchObject({ code: 'LEDGER_BAD_BATCH' });
    });

    it('copies values given to put (later mutation of the caller array has no effect)', async () => {
      const v = b('abc');
      const batch = kv.batch().put(b('k'), v);
      v[0] = 0x7a;
      await batch.write();
      expect(s((await kv.get(b('k')))!)).toBe('abc');
    });

    it('iterates in unsigned byte order with gt/gte/lt/lte, reverse and limit', async () => {
      await fill(kv, ['b', 'a', 'c', 'aa', 'd']);
      const bin = kv.batch();
      bin.put(new Uint8Array([0xff, 1]), b('hi')).put(new Uint8Array([0x00]), b('lo'));
      await bin.write();
      const all = (await collect(kv)).map(([k]) => k);
      expect(all).toEqual(['\u0000', 'a', 'aa', 'b', 'c', 'd', s(new Uint8Array([0xff, 1]))]);
      const keys = async (o: IterateOptions) => (await collect(kv, o)).map(([k]) => k);
      expect(await keys({ gte: b('aa'), lt: b('c') })).toEqual(['aa', 'b']);
      expect(await keys({ gt: b('aa'), lte: b('c') })).toEqual(['b', 'c']);
      expect(await keys({ gte: b('a'), lt: b('d'), reverse: true })).toEqual(['c', 'b', 'aa', 'a']);
      expect(await keys({ gte: b('a'), limit: 2 })).toEqual(['a', 'aa']);
      expect(await keys({ lt: b('c'), reverse: true, limit: 2 })).toEqual(['b', 'aa']);
      expect(await keys({ gte: b('x'), lt: b('a') })).toEqual([]);
      expect(await keys({ limit: 0 })).toEqual([]);
    });

    it('iterators read a snapshot: writes after creation are not seen', async () => {
      await fill(kv, ['a', 'b', 'c']);
      const it = kv.iterate()[Symbol.asyncIterator]();
      const first = await it.next();
      await fill(kv, ['bb', 'z']);
      const rest: string[] = [];
      for (let r = await it.next(); !r.done; r = await it.next()) rest.push(s(r.value[0]));
      expect(s((first.value as [Uint8Array, Uint8Array])[0])).toBe('a');
      expect(rest).toEqual(['b', 'c']);
    });

    it('breaking out of an iteration early releases it', async () => {
      await fill(kv, ['a', 'b', 'c']);
      for await (const [k] of kv.iterate()) {
        expect(s(k)).toBe('a');
        break;
      }
      expect((await collect(kv)).length).toBe(3);
    });

    it('sublevels are disjoint key spaces and nest', async () => {
      const x = kv.sublevel('x');
      const y = kv.sublevel('y');
      const xy = x.sublevel('y');
      await fill(x, ['1', '2']);
      await fill(y, ['1']);
      await fill(xy, ['1']);
      await fill(kv, ['x', 'y']);
      expect(s((await x.get(b('1')))!)).toBe('v-1');
      // a view's own iteration includes its nested sublevels' entries, under their prefix
      expect((await collect(x)).map(([k]) => k)).toEqual(['1', '2', 'y\u00001']);
      expect((await collect(xy)).map(([k]) => k)).toEqual(['1']);
      expect((await collect(y)).map(([k]) => k)).toEqual(['1']);
      expect((await collect(x, { gt: b('1'), lt: b('3') })).map(([k]) => k)).toEqual(['2']);
      expect((await collect(x, { lt: b('3'), reverse: true, limit: 1 })).map(([k]) => k)).toEqual(['2']);
      // the root sees everything, prefixed
      expect((await collect(kv)).length).toBe(6);
      expect(() => kv.sublevel('')).toThrow();
      expect(() => kv.sublevel('a\u0000b')).toThrow();
    });

    it('one batch spans sublevels atomically through scoped()', async () => {
      const x = kv.sublevel('x');
      const y = kv.sublevel('y');
      const batch = x.batch();
      batch.put(b('1'), b('x1'));
      batch.scoped(y).put(b('1'), b('y1'));
      batch.scoped(kv).put(b('top'), b('t'));
      expect(batch.length).toBe(3);
      expect(await y.get(b('1'))).toBeUndefined();
      await batch.write();
      expect(s((await x.get(b('1')))!)).toBe('x1');
      expect(s((await y.get(b('1')))!)).toBe('y1');
      expect(s((await kv.get(b('top')))!)).toBe('t');
    });

    it('refuses to scope a batch to another store', async () => {
      const other = await factory.open();
      try {
        expect(() => kv.batch().scoped(other)).toThrow(/another store/);
      } finally {
        await other.close();
      }
    });

    if (factory.reopen !== undefined) {
      it('keeps data across close and reopen', async () => {
        await fill(kv.sublevel('p'), ['k']);
        kv = await factory.reopen!(kv);
        expect(s((await kv.sublevel('p').get(b('k')))!)).toBe('v-k');
      });
    }
  });
}
