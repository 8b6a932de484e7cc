/**
 * `loom ledger verify` on a real level ledger: an intact ledger passes; flipping one byte of a
 * stored block makes the command exit 1 naming that block.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { channelLedgerPath, openChannelLedger } from '../../packages/peer/src/committer/ledger.js';
import { tagged, u64 } from '../../packages/peer/src/ledger/keys.js';
import { openLedgerKV } from '../../packages/peer/src/ledger/ledger-stores.js';
import { createTestNetwork, endorserTx, put, TestChain } from '../../packages/peer/test/fixtures.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const loom = join(root, 'packages/cli/dist/bin/loom.js');
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe.skipIf(!existsSync(loom))('loom ledger verify', () => {
  it('passes an intact ledger and names the block whose bytes were changed', async () => {
    const net = await createTestNetwork('mychannel');
    const chain = new TestChain(net);
    const both = [net.org1.peer, net.org2.peer];
    for (let b = 0; b < 3; b++) {
      const txs = [];
      for (let i = 0; i < 3; i++) {
        txs.push(
          (await endorserTx(net, { creator: net.org1.client, endorsers: both, writes: [put(`k${b}-${i}`, 'v')] }))
            .envelope,
        );
      }
      await chain.cut(txs);
    }
    const dataDir = await mkdtemp(join(tmpdir(), 'loom-verify-'));
    dirs.push(dataDir);
    const ledger = await openChannelLedger({ dataDir, channelId: 'mychannel' });
    for (const b of chain.blocks) await ledger.commitBlock(b);
    await ledger.close();

    const ok = spawnSync(process.execPath, [loom, 'ledger', 'verify', '--data', dataDir, '-C', 'mychannel'], {
      encoding: 'utf8',
    });
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/ledger of mychannel OK: 4 blocks, 10 transactions/);

    const kv = await openLedgerKV(channelLedgerPath(dataDir, 'mychannel'));
    const blocks = kv.sublevel('blocks');
    const key = tagged('n', u64(2));
    const bytes = (await blocks.get(key))!.slice();
    const i = Math.floor(bytes.length / 2);
    bytes[i] = bytes[i]! ^ 0x01;
    await blocks.batch().put(key, bytes).write();
    await kv.close();

    const bad = spawnSync(
      process.execPath,
      [loom, '--json', 'ledger', 'verify', '--data', dataDir, '-C', 'mychannel'],
      { encoding: 'utf8' },
    );
    expect(bad.status).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, blockNum: 2 });
  });
});
