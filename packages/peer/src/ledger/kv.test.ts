import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kvComplianceSuite } from './kv-compliance.js';
import { openLevelKV } from './level-kv.js';
import { createMemoryKV } from './memory-kv.js';

kvComplianceSuite('MemoryKV', { open: async () => createMemoryKV() });

const dirs: string[] = [];
const paths = new WeakMap<object, string>();
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
