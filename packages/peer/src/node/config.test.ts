import { describe, expect, it } from 'vitest';
import { parsePeerConfig } from './config.js';

const base = {
  id: 'peer0.org1',
  mspId: 'Org1MSP',
  mspDir: './msp',
  dataDir: './data',
  listen: { host: '127.0.0.1', port: 7051 },
};

describe('peer config', () => {
  it('stays backwards compatible: the full-peer fields are optional', () => {
    const c = parsePeerConfig(base, 'peer.yaml', '/etc/loom');
    expect(c.chaincodePort).toBeUndefined();
    expect(c.chaincodeExecuteTimeoutMs).toBeUndefined();
    expect(c.ledgerWriteBufferMB).toBeUndefined();
    expect(c.tls).toBeUndefined();
    expect(c.peers).toEqual([]);
    expect(c.undefinedChaincodesUseChannelEndorsement).toBe(false);
  });

  it('reads chaincodePort, tls, peers and chaincodeExecuteTimeoutMs, resolving paths', () => {
    const c = parsePeerConfig(
      {
        ...base,
        chaincodePort: 7052,
        chaincodeExecuteTimeoutMs: 5000,
        ledgerWriteBufferMB: 64,
        tls: { certFile: 'tls/server.crt', keyFile: 'tls/server.key', caFiles: ['tls/ca.crt'] },
        peers: [{ mspId: 'Org2MSP', url: 'https://127.0.0.1:9051/' }],
      },
      'peer.yaml',
      '/etc/loom',
    );
    expect(c.chaincodePort).toBe(7052);
    expect(c.chaincodeExecuteTimeoutMs).toBe(5000);
    expect(c.ledgerWriteBufferMB).toBe(64);
    expect(c.tls).toEqual({
      certFile: '/etc/loom/tls/server.crt',
      keyFile: '/etc/loom/tls/server.key',
      caFiles: ['/etc/loom/tls/ca.crt'],
      clientAuthRequired: false,
    });
    expect(c.operationsTls).toBeUndefined();
    expect(c.peers).toEqual([{ mspId: 'Org2MSP', url: 'https://127.0.0.1:9051' }]);
  });

  it('refuses malformed full-peer fields with the path named', () => {
    expect(() => parsePeerConfig({ ...base, chaincodePort: 70000 })).toThrow(/chaincodePort/);
    expect(() => parsePeerConfig({ ...base, ledgerWriteBufferMB: 0 })).toThrow(/ledgerWriteBufferMB/);
    expect(() => parsePeerConfig({ ...base, ledgerWriteBufferMB: '16' })).toThrow(/ledgerWriteBufferMB/);
    expect(() => parsePeerConfig({ ...base, tls: { certFile: 'a' } })).toThrow(/tls\.keyFile/);
    expect(() => parsePeerConfig({ ...base, tls: { certFile: 'a', keyFile: 'b', clientAuthRequired: true } })).toThrow(
      /tls\.caFiles/,
    );
    expect(() =>
      parsePeerConfig({
        ...base,
        operations: { host: '127.0.0.1', port: 1, tls: { certFile: 'a', keyFile: 'b', x: 1 } },
      }),
    ).toThrow(/operations\.tls\.x/);
    expect(() => parsePeerConfig({ ...base, peers: [{ mspId: 'Org2MSP', url: 'ftp://x' }] })).toThrow(
      /peers\[0\]\.url/,
    );
    expect(() => parsePeerConfig({ ...base, chaincodeExecuteTimeoutMs: 0 })).toThrow(/chaincodeExecuteTimeoutMs/);
  });
});
