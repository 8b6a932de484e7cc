/**
 * A 5-node Raft group of real orderer processes tolerates 2 failures (`npm run test:e2e`): the
 * leader and one follower are killed with SIGKILL under load; the 3 survivors elect a leader and
 * keep ordering (every envelope broadcast to them is acknowledged); the 2 killed nodes restart and
 * catch up — through a Raft snapshot, as the log is compacted every 20 entries — to byte-identical
 * blocks. Every acknowledged envelope is in exactly one block, at the place it was acknowledged.
 * LOOM_5NODE_ENVELOPES sets the envelopes per phase (default 600).
 */
import { existsSync, readFileSync } from 'node:fs';
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

const CH = 'fivechannel';
const PER_PHASE = Number(process.env.LOOM_5NODE_ENVELOPES ?? 600);

let procs: OrdererProcess[] = [];
let root = '';

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  if (root && process.env.LOOM_KEEP_E2E !== '1') await rm(root, { recursive: true, force: true });
});

describe.skipIf(!existsSync(ORDERER_BIN))('orderer: 5-node group with 2 nodes killed', () => {
  it('keeps ordering with 3 of 5 consenters, and the 2 killed nodes catch up after restart', async () => {
    root = await mkdtemp(join(tmpdir(), 'loom-orderer-5node-'));
    const net = await createNetwork(5, CH);
    const cluster = await prepareCluster(net, { root, snapshotIntervalEntries: 20, logSpec: 'info' });
    procs = cluster.procs;
    const config = channelConfig(net, cluster.endpoints, { maxMessageCount: 50, batchTimeoutMs: 50 });
    // One at a time: five node processes loading their modules at once on a loaded 2-core machine
    // can take longer than the harness's start timeout.
    for (const p of procs) await p.start();
    const genesis = genesisBlock(net, config);
    for (const p of procs) expect((await joinChannel(p, genesis.bytes)).status).toBe(201);
    const firstLeader = await agreedLeader(procs, CH, 60_000);

    const live = () => procs.filter((p) => p.child);
    const acks = new Map<Uint8Array, { blockNumber: number; txIndex: number }>();
    const phase = async () => {
      const envs = Array.from({ length: PER_PHASE }, () => txEnvelope(net.org1.client, CH));
      const targets = live();
      await pool(envs, 32, async (env, i) => {
        acks.set(env, await submitWithRetry(targets, CH, env, i, 60_000));
      });
      return envs;
    };

    // Phase 1: all five up.
    const before = await phase();

    // Kill the leader and one follower; the 3 survivors still form a majority of 5.
    const follower = procs.find((p) => p.id !== firstLeader)!;
    const victims = [procs.find((p) => p.id === firstLeader)!, follower];
    const killedAt = Date.now();
    await Promise.all(victims.map((v) => v.kill('SIGKILL')));
    const secondLeader = await agreedLeader(live(), CH, 30_000, firstLeader);
    const electionMs = Date.now() - killedAt;
    expect(victims.map((v) => v.id)).not.toContain(secondLeader);

    // Phase 2: only three up — every envelope is still acknowledged.
    const during = await phase();
    const heightWithThree = Math.max(
      ...(await Promise.all(live().map((p) => channelInfo(p, CH)))).map((i) => i.height),
    );

    // The killed nodes restart and catch up (their logs are behind a compacted snapshot).
    for (const v of victims) await v.start();
    const after = await phase();
    const height = Math.max(...(await Promise.all(procs.map((p) => channelInfo(p, CH)))).map((i) => i.height));
    await until(
      'all five orderers at the same height',
      async () => {
        const hs = await Promise.all(procs.map((p) => channelInfo(p, CH).then((i) => i.height)));
        return hs.every((h) => h >= height);
      },
      120_000,
      200,
    );
    console.info(
      `5 nodes: ${firstLeader} and ${follower.id} killed, ${secondLeader} led after ${electionMs} ms; ` +
        `height ${heightWithThree} with three nodes, ${height} at the end`,
    );
    // At least one of the restarted nodes went through a snapshot install (log compacted every 20 entries).
    const logs = victims.map((v) => readFileSync(join(v.dir, 'orderer.log'), 'utf8'));
    expect(logs.some((l) => l.includes('installing Raft snapshot'))).toBe(true);

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
      for (const other of chains.slice(1)) expect(bytesEqual(decodeBlock(other[n]!).header, b.header)).toBe(true);
      if (n > 0) for (const e of b.data) count.set(toHex(sha256(e)), (count.get(toHex(sha256(e))) ?? 0) + 1);
    }
    const all = [...before, ...during, ...after];
    expect(acks.size).toBe(all.length);
    let missing = 0;
    let doubled = 0;
    for (const env of all) {
      const c = count.get(toHex(sha256(env))) ?? 0;
      if (c === 0) missing++;
      if (c > 1) doubled++;
      const a = acks.get(env)!;
      expect(bytesEqual(decodeBlock(chains[0]![a.blockNumber]!).data[a.txIndex]!, env)).toBe(true);
    }
    expect({ missing, doubled }).toEqual({ missing: 0, doubled: 0 });
  }, 300_000);
});
