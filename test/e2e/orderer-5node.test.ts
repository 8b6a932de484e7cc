/**
 * A 5-node Raft group of real orderer processes tolerates 2 failures (`npm run test:e2e`): the
 * leader and one follower are killed with SIGKILL under load; the 3 survivors elect a leader and
 * keep ordering (every envelope broadcast to them is acknowledged); the 2 killed nodes restart and
 * catch up — through a Raft snapshot, as the log is compacted every 20 entries — to byte-identical
 * blocks. Every acknowledged envelope is in exactly one block, at the place it was acknowledged.
 * LOOM_5NODE_ENVELOPES sets the envelopes per phase (default 600).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { txEnvelope } from '../../packages/orderer/test/fixtures.js';
import {
  agreedLeader,
  channelInfo,
  ORDERER_BIN,
  pool,
  submitWithRetry,
  until,
} from '../../packages/orderer/test/harness.js';
import { deliveredChains, expectOrderedOnce, OrdererGroup } from './helpers.js';

const CH = 'fivechannel';
const PER_PHASE = Number(process.env.LOOM_5NODE_ENVELOPES ?? 600);

const group = new OrdererGroup();

afterAll(() => group.cleanup());

describe.skipIf(!existsSync(ORDERER_BIN))('orderer: 5-node group with 2 nodes killed', () => {
  it('keeps ordering with 3 of 5 consenters, and the 2 killed nodes catch up after restart', async () => {
    // One at a time: five node processes loading their modules at once on a loaded 2-core machine
    // can take longer than the harness's start timeout.
    const { net, leader: firstLeader } = await group.start({
      prefix: 'loom-orderer-5node-',
      nodes: 5,
      channel: CH,
      snapshotIntervalEntries: 20,
      maxMessageCount: 50,
      oneByOne: true,
      leaderTimeoutMs: 60_000,
    });
    const procs = group.procs;

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

    const { chains, count } = await deliveredChains(net, procs, CH, height, 120_000);
    const all = [...before, ...during, ...after];
    expect(acks.size).toBe(all.length);
    expectOrderedOnce(chains[0]!, count, all, (i) => acks.get(all[i]!)!);
  }, 300_000);
});
