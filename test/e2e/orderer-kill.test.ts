/**
 * The ordering service under repeated kill -9 of its leader (`npm run test:e2e`): three real
 * orderer processes, 10,000 envelopes broadcast through all of them (LOOM_KILL_ENVELOPES to change),
 * the current leader killed every quarter of the load and restarted a few seconds later.
 * Afterwards: a new leader was agreed within 3 s of each kill, every acknowledged envelope is in
 * exactly one block at the place it was acknowledged with, and all three chains are identical.
 */
import { existsSync } from 'node:fs';
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

const CH = 'killchannel';
const TOTAL = Number(process.env.LOOM_KILL_ENVELOPES ?? 10_000);
const KILLS = 3;

const group = new OrdererGroup();

afterAll(() => group.cleanup());

describe.skipIf(!existsSync(ORDERER_BIN))('orderer: kill -9 the leader under sustained load', () => {
  it(`acknowledges ${TOTAL} envelopes exactly once across ${KILLS} leader kills`, async () => {
    const { net } = await group.start({
      prefix: 'loom-orderer-kill-',
      nodes: 3,
      channel: CH,
      snapshotIntervalEntries: 200,
      maxMessageCount: 100,
      oneByOne: false,
      leaderTimeoutMs: 30_000,
    });
    const procs = group.procs;

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
    const { chains, count } = await deliveredChains(net, procs, CH, height, 120_000);
    expectOrderedOnce(chains[0]!, count, envs, (i) => acks[i]!);
  }, 900_000);
});
