import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadNetworkConfig } from '../config/network-config.js';
import { sha256 } from '../crypto/hash.js';
import { MspManager } from '../msp/msp-manager.js';
import { decodeBlock, decodeBlockHeader, encodeBlock } from '../protocol/messages.js';
import { computeDataHash } from '../protocol/transactions.js';
import { createTestOrg } from '../testing/index.js';
import { applicationPoliciesOf, mspConfigsOf, ordererPoliciesOf } from './channel-config-views.js';
import { decodeConfigEnvelopeFromBlock } from './block-helpers.js';
import { buildGenesisBlock, channelConfigFromNetwork } from './genesis.js';

const defaultConfig = fileURLToPath(new URL('../../../../network-config/default.yaml', import.meta.url));

describe('genesis block from the default network-config', async () => {
  const net = await loadNetworkConfig(defaultConfig);
  const [org1, org2, ord] = await Promise.all([
    createTestOrg('Org1MSP'),
    createTestOrg('Org2MSP'),
    createTestOrg('OrdererMSP'),
  ]);
  const material = (o: typeof org1) => ({ rootCerts: [o.ca.certPem], tlsRootCerts: [o.ca.certPem] });
  const consenters = Object.fromEntries(
    net.ordererOrganization.orderers.map((o) => [
      o.name,
      { identityCert: ord.orderer.certPem, tlsCert: ord.orderer.certPem },
    ]),
  );
  const config = channelConfigFromNetwork(
    net,
    'mychannel',
    { Org1MSP: material(org1), Org2MSP: material(org2), OrdererMSP: material(ord) },
    consenters,
  );
  const block = decodeBlock(encodeBlock(buildGenesisBlock(config, 1_700_000_000_000, sha256)));

  it('is block 0 with a zero previous hash and a correct data hash, carrying the config', () => {
    const header = decodeBlockHeader(block.header);
    expect(header.number).toBe(0);
    expect(header.previousHash).toEqual(new Uint8Array(32));
    expect(header.dataHash).toEqual(computeDataHash(block.data, sha256));
    expect(decodeConfigEnvelopeFromBlock(block)).toEqual(config);
    expect(config.orderer.consenters.map((c) => c.id)).toEqual(['orderer0', 'orderer1', 'orderer2']);
    expect(config.orderer.batch).toEqual({
      batchTimeoutMs: 250,
      maxMessageCount: 500,
      absoluteMaxBytes: 10485760,
      preferredMaxBytes: 2097152,
    });
  });

  it('its MSPs validate members and its policies admit writers and require a majority of admins', async () => {
    const msps = new MspManager(mspConfigsOf(config));
    const client1 = await msps.deserialize(org1.client.serialized);
    const admin1 = await msps.deserialize(org1.admin.serialized);
    const admin2 = await msps.deserialize(org2.admin.serialized);
    const app = applicationPoliciesOf(config);
    expect(app.evaluate('Writers', [client1]).satisfied).toBe(true);
    expect(app.evaluate('Admins', [admin1]).satisfied).toBe(false);
    expect(app.evaluate('Admins', [admin1, admin2]).satisfied).toBe(true);
    const ordererMember = await msps.deserialize(ord.orderer.serialized);
    expect(ordererPoliciesOf(config).evaluate('Writers', [ordererMember]).satisfied).toBe(true);
    expect(ordererPoliciesOf(config).evaluate('Writers', [client1]).satisfied).toBe(false);
  });
});
