import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kvComplianceSuite } from './kv-compliance.js';
import { describe, expect, it } from 'vitest';
import { type BatchOp, type KVBackend, kvFromBackend, splitBackend } from './kv.js';
import { openLevelKV } from './level-kv.js';
import { createMemoryBackend, createMemoryKV } from './memory-kv.js';

const te = new TextEncoder();
const td = new TextDecoder();

kvComplianceSuite('MemoryKV', { open: async () => createMemoryKV() });
// Split stores: the suite's ranges cross the prefix ('a', 'aa' in the side store; sublevel x in the other).
kvComplianceSuite('split MemoryKV, prefix "a"', {
  open: async () => kvFromBackend(splitBackend(createMemoryBackend(), createMemoryBackend(), te.encode('a'))),
});
kvComplianceSuite('split MemoryKV, prefix "x\\0"', {
  open: async () => kvFromBackend(splitBackend(createMemoryBackend(), createMemoryBackend(), te.encode('x\u0000'))),
});

describe('splitBackend', () => {
  it('writes the side part of a batch first: if it fails, nothing reaches the main store', async () => {
    const main = createMemoryBackend();
    const other = createMemoryBackend();
    const failing: KVBackend = {
      get: (k) => other.get(k),
      getMany: (ks) => other.getMany(ks),
      iterate: (o) => other.iterate(o),
      close: () => other.close(),
      write: async (_ops: BatchOp[]) => {
        throw new Error('disk full');
      },
    };
    const kv = kvFromBackend(splitBackend(main, failing, te.encode('s')));
    await expect(
      kv.batch().put(te.encode('s1'), te.encode('big')).put(te.encode('m1'), te.encode('x')).write(),
    ).rejects.toThrow('disk full');
    expect(await main.get(te.encode('m1'))).toBeUndefined();
  });

  it('keeps keys under the prefix out of the main store, and reads legacy ones left there', async () => {
    const main = createMemoryBackend();
    const side = createMemoryBackend();
    await main.write([{ type: 'put', key: te.encode('s-old'), value: te.encode('1') }]);
    const kv = kvFromBackend(splitBackend(main, side, te.encode('s'), { legacyInMain: true }));
    await kv.batch().put(te.encode('s-new'), te.encode('2')).put(te.encode('t'), te.encode('3')).write();
    expect(await main.get(te.encode('s-new'))).toBeUndefined();
    expect(await side.get(te.encode('s-new'))).toBeDefined();
    expect(td.decode((await kv.get(te.encode('s-old')))!)).toBe('1');
    const many = await kv.getMany([te.encode('t'), te.encode('s-old'), te.encode('s-new'), te.encode('s-none')]);
    expect(many.map((v) => (v === undefined ? undefined : td.decode(v)))).toEqual(['3', '1', '2', undefined]);
    const keys: string[] = [];
    for await (const [k] of kv.iterate({ gte: te.encode('s'), lt: te.encode('t') })) keys.push(td.decode(k));
    expect(keys).toEqual(['s-new', 's-old']);
  });
});

const dirs: string[] = [];
const paths = new WeakMap<object, string>();
kvComplianceSuite('LevelKV split into two databases, prefix "a"', {
  async open() {
    const dir = await mkdtemp(join(tmpdir(), 'loom-kv-'));
    dirs.push(dir);
    const kv = await openLevelKV(dir, { split: { prefix: te.encode('a'), dir: 'side', sync: true } });
    paths.set(kv, dir);
    return kv;
  },
  async reopen(kv) {
    const dir = paths.get(kv)!;
    await kv.close();
    const again = await openLevelKV(dir, { split: { prefix: te.encode('a'), dir: 'side', sync: true } });
    paths.set(again, dir);
    return again;
  },
  async cleanup() {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  },
});

kvComplianceSuite('LevelKV', {
  async open() {
    const dir = await mkdtemp(join(tmpdir(), 'loom-kv-'));
    dirs.push(dir);
    const kv = await openLevelKV(dir);
    paths.set(kv, dir);
    return kv;
  },
  async reopen(kv) {
    const dir = paths.get(kv)!;
    await kv.close();
    const again = await openLevelKV(dir);
    paths.set(again, dir);
    return again;
  },
  async cleanup() {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  },
});
