import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrdererConfig } from './orderer.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loom-orderer-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const base = [
  'id: orderer0',
  'mspId: OrdererMSP',
  'mspDir: ./msp',
  'dataDir: ./data',
  'port: 7050',
  'adminPort: 7053',
  'raftPort: 7150',
];

async function load(extra: string[]) {
  const file = join(dir, `o-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, [...base, ...extra].join('\n'));
  return loadOrdererConfig(file);
}

describe('orderer.yaml', () => {
  it('reads the durability and admission settings, resolving paths against the file', async () => {
    const c = await load(['syncWrites: false', 'maxPendingEnvelopes: 500', 'submitTimeoutMs: 4000']);
    expect(c).toMatchObject({ syncWrites: false, maxPendingEnvelopes: 500, submitTimeoutMs: 4000 });
    expect(c.dataDir).toBe(join(dir, 'data'));
    // Unset: the node syncs every write (the default).
    expect((await load([])).syncWrites).toBeUndefined();
  });

  it('refuses a bad value with ORDERER_CONFIG_INVALID naming the field', async () => {
    await expect(load(['syncWrites: "yes"'])).rejects.toMatchObject({
      code: 'ORDERER_CONFIG_INVALID',
      message: expect.stringMatching(/syncWrites must be true or false/),
    });
    await expect(load(['maxPendingEnvelopes: 0'])).rejects.toMatchObject({
      code: 'ORDERER_CONFIG_INVALID',
      message: expect.stringMatching(/maxPendingEnvelopes must be a positive integer/),
    });
  });
});
