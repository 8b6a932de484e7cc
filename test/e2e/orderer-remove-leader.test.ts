/**
 * Removing the current Raft leader from the consenter set by a config update, on three real orderer
 * processes (`npm run test:e2e`), while envelopes keep arriving:
 *   - the config block is committed, the removed leader takes itself out of the Raft group and
 *     leadership moves to one of the two remaining consenters;
 *   - every envelope broadcast before, during and after the change through the remaining orderers is
 *     acknowledged and is in exactly one block, at the place it was acknowledged with;
 *   - the removed node reports itself a follower (not a consenter), no longer leads, and receives no
 *     block after its removal while the other two keep ordering, with byte-identical chains.
 */
import { existsSync } from 'node:fs';
import { decodeBlock, decodeBlockHeader } from '@loom/common';
import { afterAll, describe, expect, it } from 'vitest';
import { configUpdateEnvelope, txEnvelope } from '../../packages/orderer/test/fixtures.js';
import {
  agreedLeader,
  broadcast,
  channelInfo,
  ORDERER_BIN,
  pool,
  submitWithRetry,
  until,
} from '../../packages/orderer/test/harness.js';
import { deliveredChains, expectOrderedOnce, OrdererGroup } from './helpers.js';

const CH = 'removeleader';

const group = new OrdererGroup();

afterAll(() => group.cleanup());

describe.skipIf(!existsSync(ORDERER_BIN))('orderer: the Raft leader removed as a consenter by config', () => {
  it('leadership moves to a remaining consenter, ordering goes on, the removed node stops taking part', async () => {
    const {
      net,
      config,
      leader: leaderId,
    } = await group.start({
      prefix: 'loom-orderer-rmleader-',
      nodes: 3,
      channel: CH,
      snapshotIntervalEntries: 50,
      maxMessageCount: 20,
      oneByOne: true,
      leaderTimeoutMs: 60_000,
    });
    const procs = group.procs;
    const leader = procs.find((p) => p.id === leaderId)!;
    const rest = procs.filter((p) => p !== leader);

    // Load through the two nodes that stay, before, during and after the change.
    const envs = Array.from({ length: 600 }, () => txEnvelope(net.org1.client, CH));
    const acks: Array<{ blockNumber: number; txIndex: number } | undefined> = new Array(envs.length);
    let acked = 0;
    const load = pool(envs, 16, async (env, i) => {
      acks[i] = await submitWithRetry(rest, CH, env, i, 120_000);
      acked++;
    });
    await until('the first 100 acknowledgements', () => acked >= 100, 120_000, 20);

    const without = {
      ...config,
      orderer: { ...config.orderer, consenters: config.orderer.consenters.filter((c) => c.id !== leaderId) },
    };
    const update = configUpdateEnvelope(net.org1.admin, 0, without, {
      current: config,
      signers: [net.ordererAdmin],
    });
    // Submitted by the orderer org's admin, who is no writer of this channel (its orderer section has
    // no Writers policy): refused as unauthorized, not as a missing policy.
    const byOrdererAdmin = await broadcast(
      rest[0]!,
      CH,
      configUpdateEnvelope(net.ordererAdmin, 0, without, { current: config, signers: [net.ordererAdmin] }),
    );
    expect(byOrdererAdmin.status).toBe(403);
    expect(byOrdererAdmin.body.code).toBe('POLICY_NOT_SATISFIED');
    // Through a remaining node: it forwards to the leader, which orders the config block that removes it.
    const at = await submitWithRetry(rest, CH, update, 0, 120_000);
    const configBlock = at.blockNumber;

    // The removed leader steps down; the two remaining consenters agree on one of themselves.
    const newLeader = await agreedLeader(rest, CH, 60_000, leaderId);
    expect(newLeader).not.toBe(leaderId);
    await until(
      `${leaderId} to stop leading and to know it is no longer a consenter`,
      async () => {
        const i = await channelInfo(leader, CH);
        return i.leader !== leaderId && i.consensusRelation === 'follower' ? i : undefined;
      },
      60_000,
      50,
    );
    await load;
    expect(acked).toBe(envs.length);

    // More blocks through the remaining two; the removed node's chain stays where it is.
    const removedHeight = (await channelInfo(leader, CH)).height;
    expect(removedHeight).toBeGreaterThan(configBlock);
    const more = Array.from({ length: 60 }, () => txEnvelope(net.org1.client, CH));
    const moreAcks: Array<{ blockNumber: number; txIndex: number }> = [];
    await pool(more, 8, async (env, i) => {
      moreAcks[i] = await submitWithRetry(rest, CH, env, i, 60_000);
    });
    const lastBlock = Math.max(...moreAcks.map((a) => a.blockNumber));
    expect(lastBlock).toBeGreaterThanOrEqual(removedHeight);
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await channelInfo(leader, CH)).height, `${leaderId} must not receive blocks after its removal`).toBe(
      removedHeight,
    );

    // The two remaining chains are identical; every acknowledged envelope is in exactly one block.
    const height = lastBlock + 1;
    await until(
      'both remaining orderers at the last block',
      async () => (await Promise.all(rest.map((p) => channelInfo(p, CH)))).every((i) => i.height >= height),
      60_000,
      100,
    );
    const { chains, count } = await deliveredChains(net, rest, CH, height, 60_000);
    for (let n = 0; n < height; n++) expect(decodeBlockHeader(decodeBlock(chains[0]![n]!).header).number).toBe(n);
    const all = [...envs, ...more];
    expectOrderedOnce(chains[0]!, count, all, (i) => (i < envs.length ? acks[i]! : moreAcks[i - envs.length]!));
  }, 600_000);
});
