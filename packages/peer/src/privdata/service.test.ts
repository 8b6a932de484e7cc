/**
 * The private data service's authenticated push/pull handlers and dissemination rules, with real
 * X.509 identities and MSPs (test CA) and in-memory stores.
 */
import {
  createLogger,
  encodeKVRWSet,
  encodeTxPvtReadWriteSet,
  isLoomError,
  MspManager,
  mspConfigsOf,
  sha256,
  type TxPvtReadWriteSet,
  utf8,
} from '@loom/common';
import type { TestIdentity } from '@loom/common/testing/index';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestNetwork, type TestNetwork } from '../../test/fixtures.js';
import type { CollectionConfig } from '../chaincode/lifecycle/collections.js';
import type { ChannelLedger } from '../committer/ledger.js';
import { createMemoryKV } from '../ledger/memory-kv.js';
import { openStateDB } from '../ledger/state-db.js';
import { keyHashHex, PrivateDataStore } from './private-store.js';
import { createPrivateDataService, type PrivateDataService } from './service.js';
import { createTransientStoreOnKv, type TransientStore } from './transient-store.js';
import {
  decodePullResponse,
  encodePullPayload,
  encodePushPayload,
  encodeSignedRequest,
  type PrivateDataPeer,
  type PrivateDataTransport,
} from './transport.js';

const NS = 'cc';
const collection = (name: string, memberOrgs: string[], required = 0, max = 3): CollectionConfig => ({
  name,
  memberPolicy: memberOrgs.map((m) => `'${m}.member'`).join(','),
  memberOrgs,
  requiredPeerCount: required,
  maxPeerCount: max,
  blockToLive: 0,
  memberOnlyRead: true,
  memberOnlyWrite: true,
  endorsementPolicy: undefined,
});
const COLLECTIONS: Record<string, CollectionConfig> = {
  shared: collection('shared', ['Org1MSP', 'Org2MSP'], 1, 2),
  org1only: collection('org1only', ['Org1MSP'], 0, 0),
  needsTwo: collection('needsTwo', ['Org1MSP', 'Org2MSP'], 2, 2),
};

const kvrwset = (key: string, value: string) =>
  encodeKVRWSet({
    reads: [],
    rangeQueriesInfo: [],
    writes: [{ key, isDelete: false, value: utf8(value) }],
    metadataWrites: [],
  });
const pvtOf = (coll: string, key = 'k', value = 'v'): TxPvtReadWriteSet => ({
  nsPvtRwsets: [{ namespace: NS, collectionPvtRwsets: [{ collectionName: coll, rwset: kvrwset(key, value) }] }],
});

let net: TestNetwork;
let msp: MspManager;

beforeAll(async () => {
  net = await createTestNetwork('pdchannel');
  msp = new MspManager(mspConfigsOf(net.config));
});

async function serviceFor(mspId: string, transport?: PrivateDataTransport, peers: PrivateDataPeer[] = []) {
  const kv = createMemoryKV();
  const state = await openStateDB(kv.sublevel('state'));
  const transient: TransientStore = createTransientStoreOnKv(createMemoryKV());
  const ledger = {
    height: () => 7,
    getTxLocation: async () => undefined,
    stores: () => ({ kv, state }),
  } as unknown as ChannelLedger;
  const service: PrivateDataService = createPrivateDataService({
    mspId,
    transient,
    transport: transport ?? { push: async () => {}, pull: async () => [] },
    channel: (id) => (id === net.channelId ? { ledger, msp } : undefined),
    collection: (_ch, ns, coll) => (ns === NS ? COLLECTIONS[coll] : undefined),
    peers: () => peers,
    logger: createLogger({ component: 'test', level: 'silent' }),
  });
  return { service, transient, kv, state };
}

const signerOf = (id: TestIdentity) => ({ identity: id.serialized, sign: (m: Uint8Array) => id.signer.sign(m) });

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return isLoomError(e) ? e.code : `not a LoomError: ${(e as Error).message}`;
  }
  return 'no error';
}

describe('private data push and pull requests', () => {
  it('stores a push from a member peer in the transient store', async () => {
    const { service, transient } = await serviceFor('Org2MSP');
    const body = await encodeSignedRequest(
      'push',
      net.channelId,
      encodePushPayload({
        channelId: net.channelId,
        txId: 'tx1',
        endorsedAtHeight: 5,
        pvtRwset: encodeTxPvtReadWriteSet(pvtOf('shared')),
      }),
      signerOf(net.org1.peer),
      Date.now(),
    );
    expect(await service.handle('push', body)).toEqual({ stored: 1 });
    expect((await transient.channel(net.channelId).get('tx1')).length).toBe(1);
  });

  it('refuses pushes from clients, with a bad signature, for foreign collections, stale or malformed', async () => {
    const { service, transient } = await serviceFor('Org2MSP');
    const payload = encodePushPayload({
      channelId: net.channelId,
      txId: 'tx2',
      endorsedAtHeight: 5,
      pvtRwset: encodeTxPvtReadWriteSet(pvtOf('shared')),
    });
    const now = Date.now();
    // A client (not a peer) of a member org.
    expect(
      await codeOf(
        service.handle(
          'push',
          await encodeSignedRequest('push', net.channelId, payload, signerOf(net.org1.client), now),
        ),
      ),
    ).toBe('PRIVDATA_FORBIDDEN');
    // Signed by one identity, claiming another.
    const forged = await encodeSignedRequest(
      'push',
      net.channelId,
      payload,
      {
        identity: net.org1.peer.serialized,
        sign: (m) => net.org2.peer.signer.sign(m),
      },
      now,
    );
    expect(await codeOf(service.handle('push', forged))).toBe('PRIVDATA_FORBIDDEN');
    // Org2's peer pushing data of a collection its org is not a member of.
    const foreign = encodePushPayload({
      channelId: net.channelId,
      txId: 'tx3',
      endorsedAtHeight: 5,
      pvtRwset: encodeTxPvtReadWriteSet(pvtOf('org1only')),
    });
    const { service: org1Service } = await serviceFor('Org1MSP');
    expect(
      await codeOf(
        org1Service.handle(
          'push',
          await encodeSignedRequest('push', net.channelId, foreign, signerOf(net.org2.peer), now),
        ),
      ),
    ).toBe('PRIVDATA_FORBIDDEN');
    // Stale timestamp, unknown channel, garbage, wrong route.
    expect(
      await codeOf(
        service.handle(
          'push',
          await encodeSignedRequest('push', net.channelId, payload, signerOf(net.org1.peer), now - 3_600_000),
        ),
      ),
    ).toBe('PRIVDATA_BAD_REQUEST');
    expect(
      await codeOf(
        service.handle(
          'push',
          await encodeSignedRequest('push', 'otherchannel', payload, signerOf(net.org1.peer), now),
        ),
      ),
    ).toBe('PEER_CHANNEL_NOT_JOINED');
    expect(await codeOf(service.handle('push', utf8('not cbor at all')))).toBe('PRIVDATA_BAD_REQUEST');
    expect(
      await codeOf(
        service.handle('pull', await encodeSignedRequest('push', net.channelId, payload, signerOf(net.org1.peer), now)),
      ),
    ).toBe('PRIVDATA_BAD_REQUEST');
    expect(await transient.channel(net.channelId).get('tx2')).toEqual([]);
  });

  it('answers pulls of member peers only, with what it holds', async () => {
    const { service, kv, state } = await serviceFor('Org1MSP');
    // Committed private writes of block 3, tx 0 (what commit writes into the private store).
    const store = new PrivateDataStore(kv.sublevel('pvt'), state);
    // The block's hashed write of the key (what every peer commits), then the pulled value.
    const hashed = kv.batch();
    await state.applyUpdates(
      hashed,
      [
        {
          namespace: NS,
          collection: 'shared',
          key: keyHashHex('k'),
          kind: 'put',
          value: sha256(utf8('secret')),
          version: { blockNum: 3, txNum: 0 },
        },
      ],
      4,
    );
    await hashed.write();
    const batch = kv.batch();
    await store.prepareReconciled(
      batch,
      { blockNum: 3, txNum: 0, txId: 't', namespace: NS, collection: 'shared', attempts: 0, notBefore: 0 },
      {
        reads: [],
        rangeQueriesInfo: [],
        writes: [{ key: 'k', isDelete: false, value: utf8('secret') }],
        metadataWrites: [],
      },
      4,
    );
    await batch.write();
    const items = [
      { blockNum: 3, txNum: 0, namespace: NS, collection: 'shared' },
      { blockNum: 9, txNum: 0, namespace: NS, collection: 'shared' },
    ];
    const now = Date.now();
    const answer = await service.handle(
      'pull',
      await encodeSignedRequest('pull', net.channelId, encodePullPayload(items), signerOf(net.org2.peer), now),
    );
    const got = decodePullResponse(answer as Uint8Array);
    expect(got.map((g) => [g.blockNum, g.collection])).toEqual([[3, 'shared']]);
    // Org2 asking for a collection of Org1 only is refused.
    const foreign = [{ blockNum: 3, txNum: 0, namespace: NS, collection: 'org1only' }];
    expect(
      await codeOf(
        service.handle(
          'pull',
          await encodeSignedRequest('pull', net.channelId, encodePullPayload(foreign), signerOf(net.org2.peer), now),
        ),
      ),
    ).toBe('PRIVDATA_FORBIDDEN');
  });
});

describe('dissemination', () => {
  const peers: PrivateDataPeer[] = [
    { mspId: 'Org1MSP', endpoint: 'https://org1-peer1' },
    { mspId: 'Org2MSP', endpoint: 'https://org2-peer0' },
    { mspId: 'Org3MSP', endpoint: 'https://org3-peer0' },
  ];

  it('pushes only to member peers, at most maxPeerCount, and stores its own copy', async () => {
    const pushed: string[] = [];
    const { service, transient } = await serviceFor(
      'Org1MSP',
      { push: async (p) => void pushed.push(p.endpoint), pull: async () => [] },
      peers,
    );
    await service.distribute(net.channelId, 'txA', pvtOf('shared'), 7);
    expect(pushed.sort()).toEqual(['https://org1-peer1', 'https://org2-peer0']);
    expect((await transient.channel(net.channelId).get('txA'))[0]?.receivedAtHeight).toBe(7);
  });

  it('fails with PRIVDATA_DISSEMINATION_FAILED, naming the counts, when too few members acknowledge', async () => {
    const pushed: string[] = [];
    const { service } = await serviceFor(
      'Org1MSP',
      {
        push: async (p) => {
          pushed.push(p.endpoint);
          if (p.mspId === 'Org2MSP') throw new Error('down');
        },
        pull: async () => [],
      },
      peers,
    );
    let err: unknown;
    try {
      await service.distribute(net.channelId, 'txB', pvtOf('needsTwo'), 7);
    } catch (e) {
      err = e;
    }
    expect(isLoomError(err) && err.code).toBe('PRIVDATA_DISSEMINATION_FAILED');
    expect((err as Error).message).toMatch(/required 2 peer\(s\) to acknowledge, got 1 of 2/);
    expect(pushed).not.toContain('https://org3-peer0');
  });
});
