/**
 * Private data carried with blocks by gossip state transfer, between two private data services on
 * in-memory ledgers: the source answers only collections the requester's org is a member of; the
 * receiver asks only when its transient store lacks the data, commits what matches the block's
 * hashes in the block's batch, and records the rest missing (for reconciliation).
 */
import { randomBytes } from 'node:crypto';
import {
  type Block,
  buildBlock,
  buildProposal,
  buildTransactionPayload,
  type Bytes,
  computeProposalHash,
  createLogger,
  encodeChaincodeAction,
  encodeConsenterMetadata,
  encodeEnvelope,
  encodeKVRWSet,
  encodeProposalResponsePayload,
  encodeTxPvtReadWriteSet,
  encodeTxReadWriteSet,
  isLoomError,
  MspManager,
  mspConfigsOf,
  sha256,
  TxValidationCode,
  toHex,
  utf8,
} from '@loom/common';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestNetwork, type TestNetwork } from '../../test/fixtures.js';
import type { CollectionConfig } from '../chaincode/lifecycle/collections.js';
import type { ChannelLedger } from '../committer/ledger.js';
import { createMemoryKV } from '../ledger/memory-kv.js';
import { openStateDB, privateNamespace } from '../ledger/state-db.js';
import type { StateUpdate } from '../validation/types.js';
import { PrivateDataStore } from './private-store.js';
import { createPrivateDataService } from './service.js';
import { createTransientStoreOnKv } from './transient-store.js';
import { decodePullResponse, encodePullResponse } from './transport.js';

const NS = 'cc';
const collection = (name: string, memberOrgs: string[]): CollectionConfig => ({
  name,
  memberPolicy: memberOrgs.map((m) => `'${m}.member'`).join(','),
  memberOrgs,
  requiredPeerCount: 0,
  maxPeerCount: 0,
  blockToLive: 0,
  memberOnlyRead: true,
  memberOnlyWrite: true,
  endorsementPolicy: undefined,
});
const COLLECTIONS: Record<string, CollectionConfig> = {
  shared: collection('shared', ['Org1MSP', 'Org2MSP']),
  org1only: collection('org1only', ['Org1MSP']),
};

const kvrwset = (key: string, value: string) =>
  encodeKVRWSet({
    reads: [],
    rangeQueriesInfo: [],
    writes: [{ key, isDelete: false, value: utf8(value) }],
    metadataWrites: [],
  });

let net: TestNetwork;
let msp: MspManager;
beforeAll(async () => {
  net = await createTestNetwork('pdgossip');
  msp = new MspManager(mspConfigsOf(net.config));
});

/** Block 1: one transaction writing `shared/k1=v1` and `org1only/k2=v2` privately (hashes on chain). */
async function privateBlock() {
  const writes = { shared: ['k1', 'v1'], org1only: ['k2', 'v2'] } as const;
  const pvt = Object.fromEntries(Object.entries(writes).map(([c, [k, v]]) => [c, kvrwset(k, v)])) as Record<
    string,
    Bytes
  >;
  const proposal = buildProposal({
    channelId: net.channelId,
    chaincodeName: NS,
    args: ['invoke'],
    creator: net.org1.client.serialized,
    nonce: randomBytes(24),
    timestamp: 1_700_000_000_000,
    hash: sha256,
  });
  const results = encodeTxReadWriteSet({
    nsRwsets: [
      {
        namespace: NS,
        rwset: { reads: [], rangeQueriesInfo: [], writes: [], metadataWrites: [] },
        collectionHashedRwsets: Object.entries(writes).map(([c, [k, v]]) => ({
          collectionName: c,
          hashedRwset: {
            hashedReads: [],
            hashedWrites: [{ keyHash: sha256(utf8(k)), isDelete: false, valueHash: sha256(utf8(v)), isPurge: false }],
            metadataWrites: [],
          },
          pvtRwsetHash: sha256(pvt[c]!),
        })),
      },
    ],
  });
  const prp = encodeProposalResponsePayload({
    proposalHash: computeProposalHash(proposal.headerBytes, proposal.inputBytes, sha256),
    extension: encodeChaincodeAction({
      results,
      events: new Uint8Array(0),
      response: { status: 200, message: '', payload: new Uint8Array(0) },
      chaincodeName: NS,
      chaincodeVersion: '1.0',
    }),
  });
  const payload = buildTransactionPayload(proposal, prp, []);
  const envelope = encodeEnvelope({ payload, signature: await net.org1.client.signer.sign(payload) });
  const block: Block = buildBlock(
    1,
    new Uint8Array(32),
    [envelope],
    encodeConsenterMetadata({ lastConfig: 0, raftIndex: 1 }),
    sha256,
  );
  const updates: StateUpdate[] = Object.entries(writes).map(([c, [k, v]]) => ({
    namespace: NS,
    collection: c,
    key: toHex(sha256(utf8(k))),
    kind: 'put',
    value: sha256(utf8(v)),
    metadata: undefined,
    isPurge: false,
    version: { blockNum: 1, txNum: 0 },
  }));
  return { block, txId: proposal.txId, pvt, updates };
}

async function peer(mspId: string) {
  const kv = createMemoryKV();
  const state = await openStateDB(kv.sublevel('state'));
  const transient = createTransientStoreOnKv(createMemoryKV());
  let height = 1;
  let committedBlock: Block | undefined;
  const ledger = {
    height: () => height,
    getBlock: async (n: number) => (n === 1 ? committedBlock : undefined),
    getTxLocation: async () => undefined,
    stores: () => ({ kv, state }),
  } as unknown as ChannelLedger;
  const service = createPrivateDataService({
    mspId,
    transient,
    transport: { push: async () => {}, pull: async () => [] },
    channel: (id) => (id === net.channelId ? { ledger, msp } : undefined),
    collection: (_ch, ns, coll) => (ns === NS ? COLLECTIONS[coll] : undefined),
    peers: () => [],
    logger: createLogger({ component: 'test', level: 'silent' }),
  });
  const hook = () => service.ledgerHook(net.channelId);
  /** Commits block 1 as the ledger does: validation's updates and the private data in ONE batch. */
  const commit = async (b: Awaited<ReturnType<typeof privateBlock>>) => {
    const batch = kv.batch();
    const codes = new Uint8Array([TxValidationCode.VALID]);
    await hook().prepare({
      batch,
      block: b.block,
      blockNum: 1,
      codes,
      result: { updates: b.updates } as never,
      stores: { kv, state } as never,
    });
    await batch.write();
    committedBlock = b.block;
    height = 2;
    await hook().committed?.({ block: b.block, blockNum: 1, codes });
  };
  const store = new PrivateDataStore(kv.sublevel('pvt'), state);
  const value = async (coll: string, key: string) => {
    const v = await state.getState(privateNamespace(NS, coll), key);
    return v ? new TextDecoder().decode(v.value) : undefined;
  };
  return { service, transient, commit, store, value };
}

describe('private data with blocks transferred by gossip', () => {
  it('the source answers only the collections the requester’s org shares with it', async () => {
    const b = await privateBlock();
    const source = await peer('Org1MSP');
    await source.transient.channel(net.channelId).persist(
      b.txId,
      1,
      encodeTxPvtReadWriteSet({
        nsPvtRwsets: [
          {
            namespace: NS,
            collectionPvtRwsets: Object.entries(b.pvt).map(([collectionName, rwset]) => ({ collectionName, rwset })),
          },
        ],
      }),
    );
    await source.commit(b);
    expect(await source.value('org1only', 'k2')).toBe('v2');

    const forOrg1 = decodePullResponse((await source.service.blockPrivateData(net.channelId, 1, 'Org1MSP'))!);
    expect(forOrg1.map((i) => i.collection).sort()).toEqual(['org1only', 'shared']);
    const forOrg2 = decodePullResponse((await source.service.blockPrivateData(net.channelId, 1, 'Org2MSP'))!);
    expect(forOrg2.map((i) => i.collection)).toEqual(['shared']);
    expect(await source.service.blockPrivateData(net.channelId, 1, 'Org3MSP')).toBeUndefined();
    // Not committed yet, unknown channel: nothing.
    expect(await source.service.blockPrivateData(net.channelId, 2, 'Org1MSP')).toBeUndefined();
    expect(await source.service.blockPrivateData('nosuch', 1, 'Org1MSP')).toBeUndefined();

    // A late Org1 peer: wants the data, commits it with the block, nothing left missing.
    const late = await peer('Org1MSP');
    expect(await late.service.needsPrivateData(net.channelId, b.block)).toBe(true);
    let written = -1;
    expect(
      late.service.stageBlockPrivateData(net.channelId, 1, encodePullResponse(forOrg1), (n) => (written = n)),
    ).toBe(2);
    await late.commit(b);
    expect(written).toBe(2);
    expect(await late.value('shared', 'k1')).toBe('v1');
    expect(await late.value('org1only', 'k2')).toBe('v2');
    expect(await late.store.missing()).toEqual([]);
    // What it now holds, it serves in turn.
    expect(decodePullResponse((await late.service.blockPrivateData(net.channelId, 1, 'Org2MSP'))!).length).toBe(1);
  });

  it('a peer holding the data in its transient store does not ask for it', async () => {
    const b = await privateBlock();
    const p = await peer('Org2MSP');
    expect(await p.service.needsPrivateData(net.channelId, b.block)).toBe(true);
    await p.transient.channel(net.channelId).persist(
      b.txId,
      1,
      encodeTxPvtReadWriteSet({
        nsPvtRwsets: [{ namespace: NS, collectionPvtRwsets: [{ collectionName: 'shared', rwset: b.pvt.shared! }] }],
      }),
    );
    // Org2 is not a member of org1only: the shared collection is all it needs.
    expect(await p.service.needsPrivateData(net.channelId, b.block)).toBe(false);
    // A non-member org never needs anything of the block.
    const org3 = await peer('Org3MSP');
    expect(await org3.service.needsPrivateData(net.channelId, b.block)).toBe(false);
  });

  it('data that does not match the block hashes is not committed: recorded missing, to reconcile', async () => {
    const b = await privateBlock();
    const late = await peer('Org1MSP');
    const forged = encodePullResponse([
      { blockNum: 1, txNum: 0, namespace: NS, collection: 'shared', rwset: kvrwset('k1', 'forged') },
      { blockNum: 1, txNum: 0, namespace: NS, collection: 'org1only', rwset: b.pvt.org1only! },
    ]);
    let written = -1;
    late.service.stageBlockPrivateData(net.channelId, 1, forged, (n) => (written = n));
    await late.commit(b);
    expect(written).toBe(1);
    expect(await late.value('shared', 'k1')).toBeUndefined();
    expect(await late.value('org1only', 'k2')).toBe('v2');
    expect((await late.store.missing()).map((m) => m.collection)).toEqual(['shared']);
  });

  it('answers from several peers add up: a forged or partial one does not satisfy the block, a later one does', async () => {
    const b = await privateBlock();
    const late = await peer('Org1MSP');
    // A first peer sends a forged copy of `shared` and nothing of org1only: still wanted.
    late.service.stageBlockPrivateData(
      net.channelId,
      1,
      encodePullResponse([{ blockNum: 1, txNum: 0, namespace: NS, collection: 'shared', rwset: kvrwset('k1', 'x') }]),
    );
    expect(await late.service.needsPrivateData(net.channelId, b.block, 1)).toBe(true);
    // A second peer holds the genuine org1only only: still wanted (shared).
    late.service.stageBlockPrivateData(
      net.channelId,
      1,
      encodePullResponse([{ blockNum: 1, txNum: 0, namespace: NS, collection: 'org1only', rwset: b.pvt.org1only! }]),
    );
    expect(await late.service.needsPrivateData(net.channelId, b.block, 1)).toBe(true);
    // A third peer holds the genuine shared one: nothing more wanted; both commit with the block.
    late.service.stageBlockPrivateData(
      net.channelId,
      1,
      encodePullResponse([{ blockNum: 1, txNum: 0, namespace: NS, collection: 'shared', rwset: b.pvt.shared! }]),
    );
    expect(await late.service.needsPrivateData(net.channelId, b.block, 1)).toBe(false);
    await late.commit(b);
    expect(await late.value('shared', 'k1')).toBe('v1');
    expect(await late.value('org1only', 'k2')).toBe('v2');
    expect(await late.store.missing()).toEqual([]);
  });

  it('refuses private data that does not decode', async () => {
    const p = await peer('Org1MSP');
    try {
      p.service.stageBlockPrivateData(net.channelId, 1, utf8('not cbor'));
      expect.fail('expected an error');
    } catch (e) {
      expect(isLoomError(e) && e.code).toBe('PRIVDATA_BAD_REQUEST');
    }
  });
});
