import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { utf8 } from '@loom/common';
import { createTestOrg } from '@loom/common/testing/index';
import { afterAll, describe, expect, it } from 'vitest';
import { openChannelLedger } from '../src/committer/ledger.js';
import { createDeliverClient } from '../src/delivery/deliver-client.js';
import { encodeFrame, FrameReader } from '../src/delivery/frames.js';
import { startBlockServer } from './block-server.js';
import { createTestNetwork, endorserTx, put, TestChain } from './fixtures.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('FrameReader', () => {
  it('reassembles frames split across chunks at every boundary', () => {
    const frames = [utf8('a'), new Uint8Array(0), utf8('hello world'), new Uint8Array(300).fill(7)];
    const stream = new Uint8Array(frames.reduce((n, f) => n + 4 + f.length, 0));
    let off = 0;
    for (const f of frames) {
      stream.set(encodeFrame(f), off);
      off += 4 + f.length;
    }
    for (const size of [1, 3, 5, 17, stream.length]) {
      const r = new FrameReader();
      const out: Uint8Array[] = [];
      for (let i = 0; i < stream.length; i += size) out.push(...r.push(stream.subarray(i, i + size)));
      expect(out).toEqual(frames);
      expect(r.buffered).toBe(0);
    }
  });

  it('refuses a frame over the limit', () => {
    expect(() => new FrameReader(10).push(encodeFrame(new Uint8Array(11)))).toThrow(/exceeds/);
  });
});

describe('deliver client', () => {
  it('fails over from an orderer serving badly signed blocks to one serving good blocks', async () => {
    const net = await createTestNetwork('failover');
    const good = new TestChain(net);
    const rogueOrg = await createTestOrg('OrdererMSP');
    const bad = new TestChain(net, rogueOrg.orderer);
    for (let b = 0; b < 5; b++) {
      const tx = await endorserTx(net, {
        creator: net.org1.client,
        endorsers: [net.org1.peer, net.org2.peer],
        writes: [put(`k${b}`, 'v')],
      });
      await good.cut([tx.envelope]);
      await bad.cut([tx.envelope]);
    }
    const badServer = await startBlockServer({ channelId: net.channelId, blocks: bad.blocks });
    const goodServer = await startBlockServer({ channelId: net.channelId, blocks: good.blocks });
    const dir = await mkdtemp(join(tmpdir(), 'loom-deliver-'));
    dirs.push(dir);
    const ledger = await openChannelLedger({ dataDir: dir, channelId: net.channelId });
    await ledger.commitBlock(good.blocks[0]!);
    const client = createDeliverClient({
      channelId: net.channelId,
      orderers: [badServer.url, goodServer.url],
      signer: { identity: net.org1.peer.serialized, sign: (m) => net.org1.peer.signer.sign(m) },
      ledger,
      initialBackoffMs: 10,
      maxBackoffMs: 50,
    });
    try {
      client.start();
      expect(await ledger.waitForBlock(5, AbortSignal.timeout(20_000))).toBe(true);
      expect(ledger.height()).toBe(6);
      const st = client.status();
      expect(st.failures).toBeGreaterThanOrEqual(1);
      expect(st.lastError).toMatch(/orderer|signature/i);
      expect(badServer.requests[0]).toEqual({ channelId: 'failover', start: 1 });
      expect(goodServer.requests.at(-1)?.start).toBeGreaterThanOrEqual(1);
    } finally {
      await client.stop();
      await ledger.close();
      await badServer.close();
      await goodServer.close();
    }
  });
});
