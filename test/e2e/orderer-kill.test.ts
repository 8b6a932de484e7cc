/**
 * The ordering service under repeated kill -9 of its leader (`npm run test:e2e`): three real
 * orderer processes, 10,000 envelopes broadcast through all of them (LOOM_KILL_ENVELOPES to change),
 * the current leader killed every quarter of the load and restarted a few seconds later.
 * Afterwards: a new leader was agreed within 3 s of each kill, every acknowledged envelope is in
 * exactly one block at the place it was acknowledged with, and all three chains are identical.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesEqual, decodeBlock, toHex } from '@loom/common';
import { sha256 } from '@loom/common/crypto/hash';
import { afterAll, describe, expect, it } from 'vitest';
import {
  channelConfig,
  createNetwork,
  genesisBlock,
  seekEnvelope,
  txEnvelope,
} from '../../packages/orderer/test/fixtures.js';
import {
  agreedLeader,
  channelInfo,
  deliver,
  joinChannel,
  ORDERER_BIN,
  type OrdererProcess,
  pool,
  prepareCluster,
  submitWithRetry,
  until,
} from '../../packages/orderer/test/harness.js';

const CH = 'killchannel';
const TOTAL = Number(process.env.LOOM_KILL_ENVELOPES ?? 10_000);
const KILLS = 3;

let procs: OrdererProcess[] = [];
let root = '';

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  if (root && process.env.LOOM_KEEP_E2E !== '1') await rm(root, { recursive: true, force: true });
});

describe.skipIf(!existsSync(ORDERER_BIN))('orderer: kill -9 the leader under sustained load', () => {
  it(`acknowledges ${TOTAL} envelopes exactly once across ${KILLS} leader kills`, async () => {
    root = await mkdtemp(join(tmpdir(), 'loom-orderer-kill-'));
    const net = await createNetwork(3, CH);
    const cluster = await prepareCluster(net, { root, snapshotIntervalEntries: 200, logSpec: 'info' });
    procs = cluster.procs;
    const config = channelConfig(net, cluster.endpoints, { maxMessageCount: 100, batchTimeoutMs: 50 });
    await Promise.all(procs.map((p) => p.start()));
    const genesis = genesisBlock(net, config);
    for (const p of procs) expect((await joinChannel(p, genesis.bytes)).status).toBe(201);
    await agreedLeader(procs, CH, 30_000);

    const envs = Array.from({ length: TOTAL }, () => txEnvelope(net.org1.client, CH));
    const acks: Array<{ blockNumber: number; txIndex: number } | undefined> = new Array(TOTAL);
    let acked = 0;
    const electionMs: number[] = [];
    const chaos = (async () => {
      for (let k = 1; k <= KILLS; k++) {
        await until(`ack ${(k * TOTAL) / (KILLS + 1)}`, () => acked >= (k * TOTAL) / (KILLS + 1), 300_000, 20);
        const live = procs.filter((p) => p.child);
        const leaderId = await agreedLeader(live, CH, 30_000);
        const victim = procs.find((p) => p.id === leaderId)!;
        const killedAt = Date.now();
        await victim.kill('SIGKILL');
        await agreedLeader(
          procs.filter((p) => p.child),
          CH,
          15_000,
          leaderId,
        );
        electionMs.push(Date.now() - killedAt);
        await new Promise((r) => setTimeout(r, 2_000));
        await victim.start();
      }
    })();
    await pool(envs, 64, async (env, i) => {
      acks[i] = await submitWithRetry(procs, CH, env, i, 60_000);
      acked++;
    });
    await chaos;
    console.info(`new leader agreed ${electionMs.join(', ')} ms after each kill; ${TOTAL} envelopes acknowledged`);
    expect(electionMs).toHaveLength(KILLS);
    // The ordering issue's target: a new leader within 3 s of the kill, measured from the SIGKILL to
    // the moment every surviving node reports the same new leader (polled every 25 ms). Elections
    // time out after 0.6-1.2 s here (tickMs 50, electionTick 12); a restarted node applies on a queue
    // beside the Raft loop (chain.ts), so a node catching up still votes.
    expect(Math.max(...electionMs), `elections took ${electionMs.join(', ')} ms`).toBeLessThan(3_000);

    const height = Math.max(...(await Promise.all(procs.map((p) => channelInfo(p, CH)))).map((i) => i.height));
    await until(
      'every orderer at the same height',
      async () => {
        const hs = await Promise.all(procs.map((p) => channelInfo(p, CH).then((i) => i.height)));
        return hs.every((h) => h >= height);
      },
      60_000,
      200,
    );
    const seek = seekEnvelope(net.org1.client, CH, {
      start: { kind: 'oldest' },
      stop: { kind: 'specified', number: height - 1 },
      behavior: 'FAIL_IF_NOT_READY',
    });
    const chains = await Promise.all(procs.map((p) => deliver(p, CH, seek, 120_000)));
    for (const c of chains) expect(c).toHaveLength(height);
    const count = new Map<string, number>();
    for (let n = 0; n < height; n++) {
      const b = decodeBlock(chains[0]![n]!);
      for (const other of chains.slice(1)) {
        const o = decodeBlock(other[n]!);
        expect(bytesEqual(o.header, b.header)).toBe(true);
      }
      if (n > 0) for (const e of b.data) count.set(toHex(sha256(e)), (count.get(toHex(sha256(e))) ?? 0) + 1);
    }
    let missing = 0;
    let doubled = 0;
    for (const [i, env] of envs.entries()) {
      const c = count.get(toHex(sha256(env))) ?? 0;
      if (c === 0) missing++;
      if (c > 1) doubled++;
      const a = acks[i]!;
      expect(bytesEqual(decodeBlock(chains[0]![a.blockNumber]!).data[a.txIndex]!, env)).toBe(true);
    }
    expect({ missing, doubled }).toEqual({ missing: 0, doubled: 0 });
  }, 900_000);
});
