import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Bytes,
  createLogger,
  decodeBlock,
  decodeValue,
  encodeBlock,
  fromBase64,
  fromHex,
  sha256,
  TxValidationCode,
  utf8,
  verify,
} from '@loom/common';
import { writeMspDir } from '@loom/common/testing/index';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFrames } from '../src/delivery/frames.js';
import { commitStatus } from '../src/node/ledger-feeds.js';
import {
  encodeLedgerDigest,
  type KeyProof,
  type LedgerDigest,
  type TxProof,
  verifyKeyProof,
  verifyTxProof,
} from '../src/ledger/accumulator.js';
import type { PeerConfig } from '../src/node/config.js';
import { type PeerNode, startPeer } from '../src/node/peer-node.js';
import type { KeyProofJson, SignedDigestJson, TxProofJson } from '../src/node/routes.js';
import { type BlockServer, startBlockServer } from './block-server.js';
import { createTestNetwork, endorserTx, put, TestChain, type TestNetwork } from './fixtures.js';

let net: TestNetwork;
let dir: string;
let server: BlockServer;
let peer: PeerNode;
let chain: TestChain;
const txIds: string[] = [];

async function waitFor(cond: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('timed out');
}

const digestOf = (j: SignedDigestJson['digest']): LedgerDigest => ({ ...j, root: fromHex(j.root) });
const txProofOf = (j: TxProofJson): TxProof => ({
  ...j,
  envelope: fromBase64(j.envelope),
  auditPath: j.auditPath.map(fromHex),
});

beforeAll(async () => {
  net = await createTestNetwork('evchannel');
  dir = await mkdtemp(join(tmpdir(), 'loom-peer-node-'));
  await writeMspDir(join(dir, 'msp'), net.org1.ca, net.org1.peer);
  chain = new TestChain(net);
  server = await startBlockServer({ channelId: net.channelId });
  const config: PeerConfig = {
    id: 'peer0.org1',
    mspId: 'Org1MSP',
    mspDir: join(dir, 'msp'),
    dataDir: join(dir, 'data'),
    listen: { host: '127.0.0.1', port: 0 },
    operations: { host: '127.0.0.1', port: 0 },
    // The first orderer is down: delivery fails over to the second.
    orderers: ['http://127.0.0.1:1', server.url],
    channels: [],
    debugStateApi: true,
    logLevel: 'warn',
  };
  // Hand-made transactions of an undefined chaincode: validated against the channel's Endorsement policy.
  peer = await startPeer(config, {
    logger: createLogger({ component: 'peer', level: 'warn' }),
    undefinedChaincodesUseChannelEndorsement: true,
  });
});

afterAll(async () => {
  await peer?.stop();
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('peer node', () => {
  it('joins a channel from its genesis block (localhost) and pulls blocks from the orderers', async () => {
    const res = await fetch(`${peer.url}/v1/channels`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: chain.blocks[0]!,
    });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ channelId: 'evchannel', height: 1 });
    const again = await fetch(`${peer.url}/v1/channels`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: chain.blocks[0]!,
    });
    expect(again.status).toBe(409);

    server.add(chain.blocks[0]!);
    for (let b = 0; b < 3; b++) {
      const envs: Bytes[] = [];
      for (let i = 0; i < 4; i++) {
        const tx = await endorserTx(net, {
          creator: net.org1.client,
          endorsers: [net.org1.peer, net.org2.peer],
          writes: [put(`k${b}-${i}`, `v${b}`)],
          event: i === 0 ? { name: 'made', payload: utf8(`block ${b}`) } : undefined,
        });
        envs.push(tx.envelope);
        txIds.push(tx.txId);
      }
      server.add(await chain.cut(envs));
    }
    await waitFor(
      async () =>
        ((await (await fetch(`${peer.url}/v1/channels/evchannel/height`)).json()) as { height: number }).height === 4,
    );
  });

  it('serves blocks, transaction status and (behind its flag) state', async () => {
    const raw = new Uint8Array(await (await fetch(`${peer.url}/v1/channels/evchannel/blocks/2`)).arrayBuffer());
    const block = decodeBlock(raw);
    expect(block.data).toHaveLength(4);
    expect([...block.metadata.txValidationCodes]).toEqual([0, 0, 0, 0]);
    expect((await fetch(`${peer.url}/v1/channels/evchannel/blocks/9`)).status).toBe(404);
    expect((await fetch(`${peer.url}/v1/channels/evchannel/blocks/x`)).status).toBe(400);
    expect((await fetch(`${peer.url}/v1/channels/nochannel/height`)).status).toBe(404);

    const tx = await (await fetch(`${peer.url}/v1/channels/evchannel/tx/${txIds[5]}`)).json();
    expect(tx).toEqual({ txId: txIds[5], blockNum: 2, txNum: 1, validationCode: 0, validationCodeName: 'VALID' });
    const st = await (await fetch(`${peer.url}/v1/channels/evchannel/state/basic/k1-2`)).json();
    expect(st).toEqual({
      namespace: 'basic',
      key: 'k1-2',
      value: Buffer.from('v1').toString('base64'),
      version: { blockNum: 2, txNum: 2 },
    });
  });

  it('signs its digest and hands out proofs that verify against it', async () => {
    const signed = (await (await fetch(`${peer.url}/v1/channels/evchannel/digest`)).json()) as SignedDigestJson;
    expect(signed.digest).toMatchObject({ channelId: 'evchannel', height: 4, txCount: 13 });
    expect(
      verify(signed.signer.certPem, encodeLedgerDigest(digestOf(signed.digest)), fromBase64(signed.signature)),
    ).toBe(true);

    const r = (await (await fetch(`${peer.url}/v1/channels/evchannel/proof/tx/${txIds[7]}`)).json()) as {
      signedDigest: SignedDigestJson;
      proof: TxProofJson;
    };
    const d = digestOf(r.signedDigest.digest);
    expect(verifyTxProof(txProofOf(r.proof), d, sha256, txIds[7])).toBe(true);

    const k = (await (await fetch(`${peer.url}/v1/channels/evchannel/proof/key/basic/k2-3?version=3:3`)).json()) as {
      signedDigest: SignedDigestJson;
      proof: KeyProofJson;
    };
    const kp: KeyProofJson = k.proof;
    const keyProof: KeyProof = { ...kp, valueHash: fromHex(kp.valueHash), tx: txProofOf(kp.tx) };
    expect(verifyKeyProof(keyProof, digestOf(k.signedDigest.digest), sha256, utf8('v2'))).toBe(true);
    expect(verifyKeyProof(keyProof, digestOf(k.signedDigest.digest), sha256, utf8('v1'))).toBe(false);
  });

  it('streams full and filtered block events and chaincode events from a start block', async () => {
    const ctl = new AbortController();
    const full = await fetch(`${peer.url}/v1/channels/evchannel/events/blocks?start=1`, { signal: ctl.signal });
    const seen: number[] = [];
    const it = readFrames(full.body as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    for (let i = 0; i < 3; i++) seen.push(decodeBlock((await it.next()).value as Bytes).data.length);
    expect(seen).toEqual([4, 4, 4]);
    // A block committed after the stream opened arrives too.
    const tx = await endorserTx(net, {
      creator: net.org1.client,
      endorsers: [net.org1.peer, net.org2.peer],
      writes: [put('late', 'x')],
    });
    const stale = await endorserTx(net, {
      creator: net.org1.client,
      endorsers: [net.org1.peer],
      writes: [put('late', 'y')],
    });
    server.add(await chain.cut([tx.envelope, stale.envelope]));
    const next = decodeBlock((await it.next()).value as Bytes);
    expect([...next.metadata.txValidationCodes]).toEqual([
      TxValidationCode.VALID,
      TxValidationCode.ENDORSEMENT_POLICY_FAILURE,
    ]);
    ctl.abort();

    const ctl2 = new AbortController();
    const filtered = await fetch(`${peer.url}/v1/channels/evchannel/events/blocks?start=4&filtered=true`, {
      signal: ctl2.signal,
    });
    const it2 = readFrames(filtered.body as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    expect(decodeValue((await it2.next()).value as Bytes, 'FilteredBlock')).toEqual([
      4,
      [
        [tx.txId, 0],
        [stale.txId, TxValidationCode.ENDORSEMENT_POLICY_FAILURE],
      ],
    ]);
    ctl2.abort();

    const ctl3 = new AbortController();
    const cc = await fetch(`${peer.url}/v1/channels/evchannel/events/chaincode/basic?start=0`, { signal: ctl3.signal });
    const it3 = readFrames(cc.body as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    const events = [];
    for (let i = 0; i < 3; i++)
      events.push(decodeValue((await it3.next()).value as Bytes, 'ChaincodeEvent') as unknown[]);
    expect(events.map((e) => [e[0], e[4]])).toEqual([
      [1, 'made'],
      [2, 'made'],
      [3, 'made'],
    ]);
    ctl3.abort();
  });

  it('reports commit status of committed and of later transactions', async () => {
    const ledger = peer.ledger('evchannel');
    expect(await commitStatus(ledger, txIds[0]!, 100)).toEqual({ blockNumber: 1, validationCode: 0 });
    const tx = await endorserTx(net, {
      creator: net.org2.client,
      endorsers: [net.org1.peer, net.org2.peer],
      writes: [put('s', '1')],
    });
    const pending = commitStatus(ledger, tx.txId, 20_000);
    expect(await commitStatus(ledger, tx.txId, 50)).toBeUndefined();
    server.add(await chain.cut([tx.envelope]));
    expect(await pending).toEqual({ blockNumber: 5, validationCode: 0 });
  });

  it('reports height and commit metrics on the operations endpoint', async () => {
    const text = await (await fetch(`${peer.operationsUrl}/metrics`)).text();
    expect(text).toMatch(/ledger_blockchain_height\{channel="evchannel"\} 6/);
    expect(text).toMatch(/ledger_block_processing_time_count\{channel="evchannel"\} [1-9]/);
    expect((await fetch(`${peer.operationsUrl}/healthz`)).status).toBe(200);
    expect(encodeBlock).toBeDefined();
  });
});
