/**
 * The cluster handshake rules, and the libp2p transport between real sockets on loopback: frames
 * flow between consenters; a node whose certificate is not a consenter's is refused.
 */
import { generateKeyPair } from '@libp2p/crypto/keys';
import { isLoomError } from '@loom/common';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { makeHandshake, verifyHandshake } from '../src/transport/handshake.js';
import { createLibp2pTransport } from '../src/transport/libp2p.js';
import type { ClusterMember, ClusterTransport } from '../src/transport/types.js';
import { createNetwork } from './fixtures.js';
import { freePort, until } from './harness.js';

const logger = pino({ level: process.env.LOOM_TEST_LOG ?? 'silent' });

describe('cluster handshake', () => {
  it('accepts a consenter and names each broken rule', async () => {
    const net = await createNetwork(2);
    const [a, b] = net.orderers as [(typeof net.orderers)[0], (typeof net.orderers)[0]];
    const members: ClusterMember[] = [a, b].map((o) => ({
      id: o.consenterId,
      host: '127.0.0.1',
      raftPort: 1,
      identityCert: o.certPem,
    }));
    const now = 1_700_000_000_000;
    const fields = { certPem: a.certPem, peerId: 'peerA', channel: 'ch', timestamp: now };
    const hs = await makeHandshake(a.signer, fields);
    const expectFor = (over: Partial<Parameters<typeof verifyHandshake>[1]> = {}) => ({
      remotePeerId: 'peerA',
      members: (c: string) => (c === 'ch' ? members : undefined),
      now,
      ...over,
    });
    expect(verifyHandshake(hs, expectFor()).member.id).toBe(a.consenterId);
    const reason = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(isLoomError(e, 'CLUSTER_HANDSHAKE_REJECTED')).toBe(true);
        return (e as Error).message;
      }
      return 'accepted';
    };
    expect(reason(() => verifyHandshake(hs, expectFor({ remotePeerId: 'someoneElse' })))).toMatch(/peer id/);
    expect(reason(() => verifyHandshake(hs, expectFor({ now: now + 120_000 })))).toMatch(/stale/);
    expect(reason(() => verifyHandshake(hs, expectFor({ members: () => undefined })))).toMatch(/unknown channel/);
    expect(reason(() => verifyHandshake(hs, expectFor({ members: () => members.slice(1) })))).toMatch(
      /not a consenter/,
    );
    // b's key signing a's certificate: the signature does not verify.
    const forged = await makeHandshake(b.signer, fields);
    expect(reason(() => verifyHandshake(forged, expectFor()))).toMatch(/bad signature/);
    expect(reason(() => verifyHandshake(new Uint8Array([1, 2]), expectFor()))).toMatch(/malformed/);
  });
});

describe('libp2p cluster transport', () => {
  const transports: ClusterTransport[] = [];
  afterEach(async () => {
    await Promise.all(transports.splice(0).map((t) => t.stop()));
  });

  it('carries frames between consenters and refuses a non-consenter', async () => {
    const net = await createNetwork(3);
    const ports = [await freePort(), await freePort(), await freePort()];
    const nodes = await Promise.all(
      net.orderers.map(async (o, i) => {
        const t = await createLibp2pTransport({
          host: '127.0.0.1',
          port: ports[i]!,
          privateKey: await generateKeyPair('Ed25519'),
          certPem: o.certPem,
          signer: o.signer,
          logger,
        });
        transports.push(t);
        return t;
      }),
    );
    const members = net.orderers.map((o, i) => ({
      id: o.consenterId,
      host: '127.0.0.1',
      raftPort: ports[i]!,
      identityCert: o.certPem,
    }));
    const consenters = members.slice(0, 2);
    const got: Array<[number, string, number]> = [];
    nodes.forEach((t, i) => {
      // Node 2 believes it is a consenter; nodes 0 and 1 know it is not.
      t.join('ch', members[i]!.id, i === 2 ? members : consenters, (from, data) => got.push([i, from, data[0]!]));
    });
    for (let k = 0; k < 5; k++) nodes[0]!.send('ch', 'orderer1', new Uint8Array([k]));
    nodes[1]!.send('ch', 'orderer0', new Uint8Array([42]));
    nodes[2]!.send('ch', 'orderer0', new Uint8Array([99]));
    await until('frames delivered', () => got.length >= 6, 10_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(got.filter(([to]) => to === 1).map(([, from, v]) => [from, v])).toEqual(
      [0, 1, 2, 3, 4].map((v) => ['orderer0', v]),
    );
    expect(got).toContainEqual([0, 'orderer1', 42]);
    expect(got.some(([, from]) => from === 'orderer2')).toBe(false);
  }, 30_000);
});
