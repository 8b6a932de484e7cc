import { LoomError } from '@loom/common';
import { describe, expect, it } from 'vitest';
import { parsePeerConfig } from '../node/config.js';

const base = {
  id: 'peer0.org1.example.com',
  mspId: 'Org1MSP',
  mspDir: '/msp',
  dataDir: '/data',
  listen: { host: '127.0.0.1', port: 7051 },
};

describe('peer config: gossip', () => {
  it('is off when absent, and parses a full section with defaults', () => {
    expect(parsePeerConfig(base).gossip).toBeUndefined();
    const g = parsePeerConfig({
      ...base,
      gossip: { listen: { port: 7151 }, bootstrap: ['127.0.0.1:7161'], orgLeader: false },
    }).gossip!;
    expect(g).toMatchObject({
      enabled: true,
      listen: { host: '127.0.0.1', port: 7151 },
      bootstrap: ['127.0.0.1:7161'],
      orgLeader: 'false',
      heartbeatMs: 1000,
      stateTransferBatch: 50,
    });
  });

  it.each([
    [{ listen: {} }, 'gossip.listen.port'],
    [{ listen: { port: 1 }, bootstrap: ['no-port'] }, 'gossip.bootstrap[0]'],
    [{ listen: { port: 1 }, orgLeader: 'sometimes' }, 'gossip.orgLeader'],
    [{ listen: { port: 1 }, stateTransferBatch: 0 }, 'gossip.stateTransferBatch'],
    ['yes', 'gossip'],
  ])('names the bad field %j', (gossip, path) => {
    try {
      parsePeerConfig({ ...base, gossip });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(LoomError);
      expect((e as LoomError).code).toBe('PEER_CONFIG_INVALID');
      expect((e as Error).message).toContain(path);
    }
  });
});
