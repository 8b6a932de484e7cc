import { createTestCa, createTestOrg } from '@loom/common/testing/index';
import { describe, expect, it } from 'vitest';
import { channelConfigFor } from '../../test/fixtures.js';
import { createChannelMembership } from './membership.js';

describe('gossip membership', () => {
  it('accepts peers of the channel orgs only: not clients, not other orgs, not another CA', async () => {
    const [orderer, org1, org2, org3] = await Promise.all(
      ['OrdererMSP', 'Org1MSP', 'Org2MSP', 'Org3MSP'].map((m) => createTestOrg(m)),
    );
    const config = channelConfigFor('ch', orderer!, [org1!, org2!]);
    const m = createChannelMembership({ channels: () => ['ch'], config: (c) => (c === 'ch' ? config : undefined) });
    const as = (id: { mspId: string; certPem: string }) => ({ ...id, nodeId: 'x', peerId: 'p', addr: '' });
    expect(m.isMember('ch', as(org1!.peer))).toBe(true);
    expect(m.isMember('ch', as(org2!.peer))).toBe(true);
    expect(m.accepts(as(org2!.peer))).toBe(true);
    expect(m.isMember('ch', as(org1!.client)), 'a client is not a gossip peer').toBe(false);
    expect(m.isMember('ch', as(org3!.peer)), 'org not in the channel').toBe(false);
    expect(m.isMember('ch', as(orderer!.orderer)), 'orderer org').toBe(false);
    const rogue = await (await createTestCa({ mspId: 'Org1MSP' })).issue({ cn: 'peer9', role: 'peer' });
    expect(m.isMember('ch', as(rogue)), 'Org1MSP name, unknown CA').toBe(false);
    expect(m.accepts(as(rogue))).toBe(false);
    expect(m.isMember('other', as(org1!.peer)), 'channel not joined').toBe(false);
  });
});
