/**
 * The peer side of chaincode execution end to end, with real chaincode processes launched by the
 * runtime over loopback: proposals signed by real certificates go through the endorser, the
 * chaincode runs against a level-backed ledger through the simulator, and the tests read the
 * endorsed read-write sets.
 */
import { createServer } from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import {
  applicationPoliciesOf,
  buildBlock,
  buildProposal,
  buildTransactionPayload,
  encodeConsenterMetadata,
  encodeEnvelope,
  GENESIS_PREVIOUS_HASH,
  TxValidationCode,
  bytesEqual,
  decodeChaincodeAction,
  decodeChaincodeEvent,
  decodeKVRWSet,
  decodeProposalResponse,
  decodeProposalResponsePayload,
  decodeTxReadWriteSet,
  encodeChannelHeader,
  encodeHeader,
  encodeProposal,
  encodeSerializedIdentity,
  encodeSignatureHeader,
  encodeSignedProposal,
  encodeValue,
  endorsementSignedBytes,
  HeaderType,
  LoomError,
  MspManager,
  mspConfigsOf,
  sha256,
  toHex,
  verify,
} from '@loom/common';
import { encodeChaincodeFrame, FrameDecoder } from '@loom/common/chaincode-protocol';
import { createTestOrg, type TestIdentity } from '@loom/common/testing/index';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChaincodeRuntime, type ChaincodeRuntime } from '../src/chaincode/runtime/index.js';
import {
  type ChaincodeDefinition,
  createEndorser,
  type Endorser,
  type EndorserChannel,
  INITIALIZED_KEY,
  type ProposalResult,
} from '../src/endorser/index.js';
import { historyKey } from '../src/ledger/keys.js';
import { openLedgerStores, type LedgerStores } from '../src/ledger/ledger-stores.js';
import { openLevelKV } from '../src/ledger/level-kv.js';
import { hashedNamespace, privateNamespace, type StateWrite } from '../src/ledger/state-db.js';
import { CommitGate, startSimulation } from '../src/simulation/index.js';
import { createEndorsementPolicySource, createSignatureVerifier, validateBlock } from '../src/validation/index.js';
import {
  commitRwset,
  compileBasic,
  keyHash,
  keyHashHex,
  sdkBin,
  signedProposal,
  str,
  utf,
  writeKitchenSink,
} from './chaincode-harness.js';
import { createTestNetwork, type TestNetwork } from './fixtures.js';

let tmp: string;
let net: TestNetwork;
let stores: LedgerStores;
let runtime: ChaincodeRuntime;
let endorser: Endorser;
let channel: EndorserChannel;
let auditor: TestIdentity;
const committedTxIds = new Set<string>();
const gate = new CommitGate();
const children: ChildProcess[] = [];

const definitions = new Map<string, ChaincodeDefinition>();
const def = (name: string, packageId: string, collections?: string[]): ChaincodeDefinition => ({
  name,
  version: '1.0',
  packageId,
  endorsementPolicy: "OR('Org1MSP.peer')",
  collections: collections?.map((c) => ({ name: c })),
  initRequired: false,
});

const v = (blockNum: number, txNum: number) => ({ blockNum, txNum });

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'loom-cc-endorser-'));
  const kitchenDir = writeKitchenSink(join(tmp, 'kitchen'));
  const basicDir = compileBasic(join(tmp, 'basic'));
  net = await createTestNetwork('mychannel');
  auditor = await net.org1.ca.issue({ cn: 'auditor1', role: 'client', attrs: { role: 'auditor' } });

  stores = await openLedgerStores(await openLevelKV(join(tmp, 'ledger')));
  const put = (namespace: string, key: string, value: string, version: { blockNum: number; txNum: number }) =>
    ({ namespace, key, kind: 'put', value: utf(value), version }) satisfies StateWrite;
  const batch = stores.kv.batch();
  await stores.state.applyUpdates(
    batch,
    [
      put('kitchen', 'a', 'A', v(1, 0)),
      put('kitchen', 'b', 'B', v(1, 1)),
      put('kitchen', 'c', 'C', v(2, 0)),
      put('kitchen', '\u0000color\u0000blue\u0000k1\u0000', 'blue-1', v(2, 1)),
      put('kitchen', '\u0000color\u0000blue\u0000k2\u0000', 'blue-2', v(2, 1)),
      put('kitchen', '\u0000color\u0000red\u0000k3\u0000', 'red-3', v(2, 1)),
      put('kitchen', 'doc1', '{"docType":"thing","owner":"ann"}', v(3, 0)),
      put('kitchen', 'doc2', '{"docType":"thing","owner":"bob"}', v(3, 0)),
      put(privateNamespace('kitchen', 'secret'), 'p1', 'private-1', v(3, 1)),
      {
        namespace: 'kitchen',
        collection: 'secret',
        key: keyHashHex('p1'),
        kind: 'put',
        value: sha256(utf('private-1')),
        version: v(3, 1),
      },
    ],
    4,
  );
  // History entries as stored before entries were reduced to their keys ([txId, timestamp,
  // isDelete, value] as the value): read as they are, with no block to look in.
  const history = batch.scoped(stores.kv.sublevel('history'));
  history.put(historyKey('kitchen', 'a', 0, 0), encodeValue(['tx-a0', 1_700_000_000_000, false, utf('A0')]));
  history.put(historyKey('kitchen', 'a', 1, 0), encodeValue(['tx-a1', 1_700_000_100_000, false, utf('A')]));
  await batch.write();

  definitions.set('kitchen', def('kitchen', 'kitchen:1', ['secret']));
  definitions.set('kitchen2', def('kitchen2', 'kitchen2:1'));
  definitions.set('basic', def('basic', 'basic:1'));
  runtime = createChaincodeRuntime({
    peerMspId: 'Org1MSP',
    queryPageSize: 2,
    startupTimeoutMs: 20_000,
    defaultChaincodeBin: sdkBin,
    packages: (id) =>
      id === 'kitchen:1' || id === 'kitchen2:1'
        ? { kind: 'process', dir: kitchenDir }
        : id === 'basic:1'
          ? { kind: 'process', dir: basicDir }
          : id === 'broken:1'
            ? { kind: 'process', dir: tmp } // no package.json: the chaincode cannot load
            : undefined,
  });
  await runtime.start();

  channel = {
    msp: new MspManager(mspConfigsOf(net.config)),
    policies: applicationPoliciesOf(net.config),
    ledger: {
      state: stores.state,
      history: stores.history,
      gate,
      isTxIdCommitted: async (txId) => committedTxIds.has(txId) || (await stores.blocks.isTxIdCommitted(txId)),
    },
  };
  endorser = makeEndorser();
});

function makeEndorser(executeTimeoutMs?: number): Endorser {
  return createEndorser({
    channels: (id) => (id === 'mychannel' ? channel : undefined),
    registry: { get: (ch, name) => (ch === 'mychannel' ? definitions.get(name) : undefined) },
    runtime,
    signer: { identity: net.org1.peer.serialized, sign: (m) => net.org1.peer.signer.sign(m) },
    executeTimeoutMs,
  });
}

afterAll(async () => {
  await runtime?.stop();
  for (const c of children) c.kill('SIGKILL');
  await stores?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function endorse(
  args: string[],
  o: { chaincode?: string; transient?: Record<string, Uint8Array>; creator?: TestIdentity; e?: Endorser } = {},
): Promise<ProposalResult & { json: unknown }> {
  const { bytes } = await signedProposal(o.creator ?? net.org1.client, {
    chaincode: o.chaincode ?? 'kitchen',
    args,
    ...(o.transient ? { transient: o.transient } : {}),
  });
  const r = await (o.e ?? endorser).processProposal(bytes);
  let json: unknown;
  try {
    json = JSON.parse(str(r.response.response.payload));
  } catch {
    json = undefined;
  }
  return { ...r, json };
}

function nsOf(r: ProposalResult, ns: string) {
  const found = r.rwset?.nsRwsets.find((n) => n.namespace === ns);
  if (!found) throw new Error(`no namespace ${ns} in rwset`);
  return found;
}

async function rejectCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof LoomError) return e.code;
    throw e;
  }
  throw new Error('expected a rejection');
}

describe('simulation through a real chaincode', () => {
  it('records reads with committed versions and has no read-your-own-writes', async () => {
    const r = await endorse(['getput', 'a', 'X']);
    expect(r.response.response.status).toBe(200);
    expect(r.json).toEqual({ before: 'A', after: 'A' });
    const ns = nsOf(r, 'kitchen');
    expect(ns.rwset.reads).toEqual([{ key: 'a', version: v(1, 0) }]);
    expect(ns.rwset.writes).toEqual([{ key: 'a', isDelete: false, value: utf('X') }]);
    // The signed payload carries exactly this rwset.
    const action = decodeChaincodeAction(decodeProposalResponsePayload(r.response.payload).extension);
    expect(decodeTxReadWriteSet(action.results)).toEqual(r.rwset);
    expect(action).toMatchObject({ chaincodeName: 'kitchen', chaincodeVersion: '1.0' });
  });

  it('records a missing key with a null version, and deletes', async () => {
    const r1 = await endorse(['get', 'nope']);
    expect(nsOf(r1, 'kitchen').rwset.reads).toEqual([{ key: 'nope', version: null }]);
    const r2 = await endorse(['del', 'b']);
    expect(nsOf(r2, 'kitchen').rwset.writes).toEqual([{ key: 'b', isDelete: true, value: new Uint8Array(0) }]);
  });

  it('simple-key ranges skip composite keys, page through QUERY_STATE_NEXT and are recorded', async () => {
    const r = await endorse(['range', '', '']);
    expect((r.json as Array<{ key: string }>).map((x) => x.key)).toEqual(['a', 'b', 'c', 'doc1', 'doc2']);
    const ns = nsOf(r, 'kitchen');
    expect(ns.rwset.reads).toEqual([]);
    expect(ns.rwset.rangeQueriesInfo).toEqual([
      {
        startKey: '\u0001',
        endKey: '',
        itrExhausted: true,
        reads: [
          { key: 'a', version: v(1, 0) },
          { key: 'b', version: v(1, 1) },
          { key: 'c', version: v(2, 0) },
          { key: 'doc1', version: v(3, 0) },
          { key: 'doc2', version: v(3, 0) },
        ],
      },
    ]);
  });

  it('a closed range records what was handed to the chaincode (one page), not exhausted', async () => {
    // Page size 2: the chaincode receives a and b in the first page, reads one and closes; the
    // peer records the page it sent (as Fabric records the batch it fetched), c is never read.
    const r = await endorse(['rangeFirst', 'a', 'd']);
    expect(r.json).toEqual({ key: 'a' });
    expect(nsOf(r, 'kitchen').rwset.rangeQueriesInfo).toEqual([
      {
        startKey: 'a',
        endKey: 'd',
        itrExhausted: false,
        reads: [
          { key: 'a', version: v(1, 0) },
          { key: 'b', version: v(1, 1) },
        ],
      },
    ]);
  });

  it('paginated ranges return a bookmark that resumes after the last key', async () => {
    const r1 = await endorse(['rangePage', '', '', '2', '']);
    const p1 = r1.json as { rows: Array<{ key: string }>; metadata: { fetchedRecordsCount: number; bookmark: string } };
    expect(p1.rows.map((x) => x.key)).toEqual(['a', 'b']);
    expect(p1.metadata.fetchedRecordsCount).toBe(2);
    expect(p1.metadata.bookmark).not.toBe('');
    expect(nsOf(r1, 'kitchen').rwset.rangeQueriesInfo[0]).toMatchObject({ startKey: '\u0001', itrExhausted: false });
    const r2 = await endorse(['rangePage', '', '', '10', p1.metadata.bookmark]);
    const p2 = r2.json as typeof p1;
    expect(p2.rows.map((x) => x.key)).toEqual(['c', 'doc1', 'doc2']);
    expect(p2.metadata.bookmark).toBe('');
    expect(nsOf(r2, 'kitchen').rwset.rangeQueriesInfo[0]).toMatchObject({ startKey: 'b\u0000', itrExhausted: true });
  });

  it('partial composite key queries, with and without pagination', async () => {
    const r = await endorse(['composite', 'color', 'blue']);
    expect(r.json).toEqual([
      { objectType: 'color', attributes: ['blue', 'k1'], value: 'blue-1' },
      { objectType: 'color', attributes: ['blue', 'k2'], value: 'blue-2' },
    ]);
    const info = nsOf(r, 'kitchen').rwset.rangeQueriesInfo[0]!;
    expect(info.startKey).toBe('\u0000color\u0000blue\u0000');
    expect(info.endKey).toBe('\u0000color\u0000blue\u0000\u{10FFFF}');
    expect(info.reads.length).toBe(2);
    const all = await endorse(['composite', 'color']);
    expect((all.json as unknown[]).length).toBe(3);
    const page = await endorse(['compositePage', 'color', 'blue', '1', '']);
    expect((page.json as { rows: unknown[]; metadata: { bookmark: string } }).rows.length).toBe(1);
    expect((page.json as { metadata: { bookmark: string } }).metadata.bookmark).not.toBe('');
  });

  it('rich queries run on the state DB and are not recorded', async () => {
    const r = await endorse(['rich', '{"selector":{"owner":"ann"}}']);
    expect(r.json).toEqual([{ key: 'doc1', value: '{"docType":"thing","owner":"ann"}' }]);
    const ns = r.rwset?.nsRwsets.find((n) => n.namespace === 'kitchen');
    expect(ns?.rwset.reads ?? []).toEqual([]);
    expect(ns?.rwset.rangeQueriesInfo ?? []).toEqual([]);
    const p = await endorse(['richPage', '{"selector":{"docType":"thing"}}', '1', '']);
    const page = p.json as { rows: Array<{ key: string }>; metadata: { bookmark: string } };
    expect(page.rows.map((x) => x.key)).toEqual(['doc1']);
    const p2 = await endorse(['richPage', '{"selector":{"docType":"thing"}}', '1', page.metadata.bookmark]);
    expect((p2.json as typeof page).rows.map((x) => x.key)).toEqual(['doc2']);
  });

  it('history comes from the history index, newest first, unrecorded', async () => {
    const r = await endorse(['history', 'a']);
    expect(r.json).toEqual([
      { txId: 'tx-a1', value: 'A', isDelete: false, seconds: 1_700_000_100 },
      { txId: 'tx-a0', value: 'A0', isDelete: false, seconds: 1_700_000_000 },
    ]);
    expect(r.rwset?.nsRwsets ?? []).toEqual([]);
  });

  it('events go into the ChaincodeAction', async () => {
    const r = await endorse(['event', 'Moved', 'payload-1']);
    const action = decodeChaincodeAction(decodeProposalResponsePayload(r.response.payload).extension);
    expect(decodeChaincodeEvent(action.events)).toEqual({
      chaincodeId: 'kitchen',
      txId: r.txId,
      eventName: 'Moved',
      payload: utf('payload-1'),
    });
  });

  it('state-based endorsement writes VALIDATION_PARAMETER metadata and reads it back', async () => {
    const r = await endorse(['setVP', 'a', "AND('Org1MSP.peer','Org2MSP.peer')"]);
    expect(nsOf(r, 'kitchen').rwset.metadataWrites).toEqual([
      { key: 'a', entries: new Map([['VALIDATION_PARAMETER', utf("AND('Org1MSP.peer','Org2MSP.peer')")]]) },
    ]);
    const g = await endorse(['getVP', 'a']);
    expect(g.json).toEqual({ vp: '' });
    expect(nsOf(g, 'kitchen').rwset.reads).toEqual([{ key: 'a', version: v(1, 0) }]);
  });

  it('private writes: values in the private rwset, hashes in the public one, transient never leaks', async () => {
    const secret = utf('top-secret-value');
    const r = await endorse(['pput', 'secret', 'p2'], { transient: { value: secret } });
    expect(r.response.response.status).toBe(200);
    const ns = nsOf(r, 'kitchen');
    expect(ns.rwset.writes).toEqual([]);
    const coll = ns.collectionHashedRwsets[0]!;
    expect(coll.collectionName).toBe('secret');
    expect(coll.hashedRwset.hashedWrites).toEqual([
      { keyHash: keyHash('p2'), isDelete: false, valueHash: sha256(secret), isPurge: false },
    ]);
    const pvt = r.privateRwset!.nsPvtRwsets[0]!;
    expect(pvt.namespace).toBe('kitchen');
    const cpvt = pvt.collectionPvtRwsets[0]!;
    expect(cpvt.collectionName).toBe('secret');
    expect(decodeKVRWSet(cpvt.rwset).writes).toEqual([{ key: 'p2', isDelete: false, value: secret }]);
    expect(coll.pvtRwsetHash).toEqual(sha256(cpvt.rwset));
    // Neither the private value nor the transient data is anywhere in what the peer signs and returns.
    expect(Buffer.from(r.bytes).includes(Buffer.from(secret))).toBe(false);
  });

  it('private reads record hashed reads with the hashed version; hashes, deletes and purges', async () => {
    const r = await endorse(['pget', 'secret', 'p1']);
    expect(r.json).toEqual({ value: 'private-1' });
    const coll = nsOf(r, 'kitchen').collectionHashedRwsets[0]!;
    expect(coll.hashedRwset.hashedReads).toEqual([{ keyHash: keyHash('p1'), version: v(3, 1) }]);
    // As Fabric: private reads are recorded hashed only, so a read-only tx has nothing to disseminate.
    expect(r.privateRwset).toBeNull();
    expect(coll.pvtRwsetHash).toEqual(new Uint8Array(0));

    const h = await endorse(['phash', 'secret', 'p1']);
    expect(h.json).toEqual({ hash: toHex(sha256(utf('private-1'))) });
    expect(nsOf(h, 'kitchen').collectionHashedRwsets[0]!.hashedRwset.hashedReads).toEqual([
      { keyHash: keyHash('p1'), version: v(3, 1) },
    ]);
    expect(h.privateRwset).toBeNull();

    const d = await endorse(['pdel', 'secret', 'p1']);
    expect(nsOf(d, 'kitchen').collectionHashedRwsets[0]!.hashedRwset.hashedWrites).toEqual([
      { keyHash: keyHash('p1'), isDelete: true, valueHash: new Uint8Array(0), isPurge: false },
    ]);
    const p = await endorse(['ppurge', 'secret', 'p1']);
    expect(nsOf(p, 'kitchen').collectionHashedRwsets[0]!.hashedRwset.hashedWrites).toEqual([
      { keyHash: keyHash('p1'), isDelete: true, valueHash: new Uint8Array(0), isPurge: true },
    ]);
    const rng = await endorse(['prange', 'secret', '', '']);
    expect(rng.json).toEqual([{ key: 'p1', value: 'private-1' }]);
  });

  it('refuses a collection the chaincode does not define', async () => {
    const r = await endorse(['pget', 'nosuch', 'p1']);
    expect(r.response.response.status).toBe(500);
    expect(r.response.response.message).toMatch(/collection nosuch could not be found/);
    expect(r.response.endorsement).toBeNull();
  });

  it('invokeChaincode runs the callee in the same simulation under its own namespace', async () => {
    const r = await endorse(['invoke', 'kitchen2', 'put', 'k', 'v2']);
    expect(r.json).toEqual({ status: 200, message: '', payload: '{}' });
    expect(r.rwset!.nsRwsets.map((n) => n.namespace)).toEqual(['kitchen2']);
    expect(nsOf(r, 'kitchen2').rwset.writes).toEqual([{ key: 'k', isDelete: false, value: utf('v2') }]);
    const self = await endorse(['invoke', 'kitchen', 'get', 'a']);
    expect((self.json as { status: number; message: string }).status).toBe(500);
    expect((self.json as { message: string }).message).toMatch(/recursive/);
    const missing = await endorse(['invoke', 'ghost', 'get', 'a']);
    expect((missing.json as { message: string }).message).toMatch(/not defined/);
  });

  it('passes creator, attributes, timestamp, transient keys and the peer MSP to the chaincode', async () => {
    const before = Date.now();
    const r = await endorse(['whoami'], { creator: auditor, transient: { t1: utf('x') } });
    const w = r.json as Record<string, unknown>;
    expect(w).toMatchObject({
      mspId: 'Org1MSP',
      role: 'auditor',
      txId: r.txId,
      channel: 'mychannel',
      peerMsp: 'Org1MSP',
      hasProposal: true,
      transient: ['t1'],
    });
    expect(w['id']).toMatch(/CN=auditor1/);
    expect(Math.abs((w['seconds'] as number) * 1000 - before)).toBeLessThan(60_000);
  });

  it('two endorsements of the same proposal have byte-identical payloads, each signed by the peer', async () => {
    const { bytes } = await signedProposal(net.org1.client, { chaincode: 'kitchen', args: ['range', 'a', 'z'] });
    const e2 = createEndorser({
      channels: () => channel,
      registry: { get: (_c, n) => definitions.get(n) },
      runtime,
      signer: { identity: net.org2.peer.serialized, sign: (m) => net.org2.peer.signer.sign(m) },
    });
    const r1 = await endorser.processProposal(bytes);
    const r2 = await e2.processProposal(bytes);
    expect(bytesEqual(r1.response.payload, r2.response.payload)).toBe(true);
    for (const [r, peer] of [
      [r1, net.org1.peer],
      [r2, net.org2.peer],
    ] as const) {
      const e = r.response.endorsement!;
      expect(e.endorser).toEqual(encodeSerializedIdentity(peer.serialized));
      expect(verify(peer.publicKey, endorsementSignedBytes(r.response.payload, e.endorser), e.signature)).toBe(true);
      expect(decodeProposalResponse(r.bytes)).toEqual(r.response);
    }
  });

  it('tells onEndorsementSigned of each endorsement it signs; a callback that throws changes nothing', async () => {
    const told: { message: Uint8Array; messageTail: Uint8Array; signature: Uint8Array }[] = [];
    const base = {
      channels: () => channel,
      registry: { get: (_c: string, n: string) => definitions.get(n) },
      runtime,
      signer: { identity: net.org1.peer.serialized, sign: (m: Uint8Array) => net.org1.peer.signer.sign(m) },
    };
    const r = await endorse(['range', 'a', 'z'], {
      e: createEndorser({ ...base, onEndorsementSigned: (x) => told.push(x) }),
    });
    expect(told).toHaveLength(1);
    const e = r.response.endorsement!;
    expect(told[0]).toEqual({ message: r.response.payload, messageTail: e.endorser, signature: e.signature });
    const throwing = createEndorser({
      ...base,
      onEndorsementSigned: () => {
        throw new Error('no');
      },
    });
    const r2 = await endorse(['range', 'a', 'z'], { e: throwing });
    expect(r2.response.endorsement).toBeDefined();
  });
});

describe('asset-transfer-basic through the endorser', () => {
  let block = 10;
  async function submit(...args: string[]) {
    const r = await endorse(args, { chaincode: 'basic' });
    if (r.response.response.status === 200 && r.rwset) await commitRwset(stores, r.rwset, v(block++, 0));
    return r;
  }

  it('InitLedger, ReadAsset, GetAllAssets, TransferAsset', async () => {
    const init = await submit('InitLedger');
    expect(init.response.response.status).toBe(200);
    expect(nsOf(init, 'basic').rwset.writes.map((w) => w.key)).toEqual([
      'asset1',
      'asset2',
      'asset3',
      'asset4',
      'asset5',
      'asset6',
    ]);
    const read = await submit('ReadAsset', 'asset1');
    expect(JSON.parse(str(read.response.response.payload))).toMatchObject({ ID: 'asset1', Owner: 'Tomoko' });
    expect(nsOf(read, 'basic').rwset.reads).toEqual([{ key: 'asset1', version: v(10, 0) }]);
    const all = await submit('GetAllAssets');
    expect((JSON.parse(str(all.response.response.payload)) as unknown[]).length).toBe(6);
    const t = await submit('TransferAsset', 'asset1', 'Christopher');
    expect(str(t.response.response.payload)).toBe('Tomoko');
    const action = decodeChaincodeAction(decodeProposalResponsePayload(t.response.payload).extension);
    expect(decodeChaincodeEvent(action.events).eventName).toBe('TransferAsset');
    const missing = await submit('ReadAsset', 'nope');
    expect(missing.response.response).toMatchObject({ status: 500, message: 'The asset nope does not exist' });
    expect(missing.response.endorsement).toBeNull();
  });
});

describe('initRequired and the definition read', () => {
  it('needs an init first, records the marker, refuses a second init', async () => {
    definitions.set('kinit', {
      ...def('kinit', 'kitchen:1'),
      initRequired: true,
      definitionKey: { namespace: '_lifecycle', key: 'namespaces/fields/kinit/Sequence' },
    });
    expect(await rejectCode(endorse(['put', 'k', 'v'], { chaincode: 'kinit' }))).toBe('CHAINCODE_NOT_INITIALIZED');
    const { bytes } = await signedProposal(net.org1.client, {
      chaincode: 'kinit',
      args: ['put', 'k', 'v'],
      isInit: true,
    });
    const init = await endorser.processProposal(bytes);
    expect(init.response.response.status).toBe(200);
    expect(nsOf(init, '_lifecycle').rwset.reads).toEqual([{ key: 'namespaces/fields/kinit/Sequence', version: null }]);
    expect(nsOf(init, 'kinit').rwset.writes).toEqual([
      { key: INITIALIZED_KEY, isDelete: false, value: utf('1.0') },
      { key: 'k', isDelete: false, value: utf('v') },
    ]);
    await commitRwset(stores, init.rwset!, v(30, 0));
    expect((await endorse(['get', 'k'], { chaincode: 'kinit' })).json).toEqual({ value: 'v' });
    const again = await signedProposal(net.org1.client, { chaincode: 'kinit', args: ['get', 'k'], isInit: true });
    expect(await rejectCode(endorser.processProposal(again.bytes))).toBe('CHAINCODE_ALREADY_INITIALIZED');
    expect(gate.activeSimulations).toBe(0);
  });
});

describe('chaincode failures', () => {
  it('a chaincode error is a 500 response without endorsement, and the next proposal works', async () => {
    const f = await endorse(['fail', 'bad input']);
    expect(f.response.response).toMatchObject({ status: 500, message: 'bad input' });
    expect(f.response.endorsement).toBeNull();
    expect(f.response.payload.length).toBe(0);
    const t = await endorse(['throws', 'kaboom']);
    expect(t.response.response).toMatchObject({ status: 500, message: 'kaboom' });
    expect((await endorse(['get', 'a'])).response.response.status).toBe(200);
  });

  it('a crash fails the proposal with CHAINCODE_CRASHED; the chaincode is restarted on next use', async () => {
    const pid1 = ((await endorse(['pid'])).json as { pid: number }).pid;
    expect(await rejectCode(endorse(['crash']))).toBe('CHAINCODE_CRASHED');
    const pid2 = ((await endorse(['pid'])).json as { pid: number }).pid;
    expect(pid2).not.toBe(pid1);
    expect((await endorse(['get', 'a'])).json).toEqual({ value: 'A' });
  });

  it('an endless loop times out with CHAINCODE_TIMEOUT, the process is killed and restarted', async () => {
    const quick = makeEndorser(1500);
    const pid1 = ((await endorse(['pid'], { e: quick })).json as { pid: number }).pid;
    const started = Date.now();
    expect(await rejectCode(endorse(['loop'], { e: quick }))).toBe('CHAINCODE_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(10_000);
    // The old process is gone.
    await expect.poll(() => isAlive(pid1), { timeout: 5000 }).toBe(false);
    const pid2 = ((await endorse(['pid'], { e: quick })).json as { pid: number }).pid;
    expect(pid2).not.toBe(pid1);
    expect(gate.activeSimulations).toBe(0);
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('endorser rejections', () => {
  it('rejects what it must, with codes', async () => {
    const client = net.org1.client;
    const ok = { chaincode: 'kitchen', args: ['get', 'a'] };
    const garbage = endorser.processProposal(new Uint8Array([1, 2, 3]));
    expect(await rejectCode(garbage)).toBe('BAD_PROPOSAL');

    const other = await signedProposal(client, { ...ok, channelId: 'otherchannel' });
    expect(await rejectCode(endorser.processProposal(other.bytes))).toBe('CHANNEL_NOT_FOUND');

    const good = await signedProposal(client, ok);
    const sp = good.bytes;
    // Flip a bit of the signature (the last bytes of the encoding).
    const tampered = sp.slice();
    tampered[tampered.length - 3]! ^= 0x01;
    expect(await rejectCode(endorser.processProposal(tampered))).toMatch(/^SIGNATURE_INVALID|ENCODING_/);

    const stranger = await createTestOrg('Org9MSP');
    expect(await rejectCode(endorser.processProposal((await signedProposal(stranger.client, ok)).bytes))).toBe(
      'MSP_UNKNOWN',
    );
    // A certificate from another CA presented as Org1MSP.
    const forged = {
      ...stranger.client,
      mspId: 'Org1MSP',
      serialized: { ...stranger.client.serialized, mspId: 'Org1MSP' },
    };
    expect(await rejectCode(endorser.processProposal((await signedProposal(forged, ok)).bytes))).toBe(
      'MSP_CERT_WRONG_CA',
    );

    // Writers is admin or client: a peer identity may not propose.
    expect(await rejectCode(endorser.processProposal((await signedProposal(net.org1.peer, ok)).bytes))).toBe(
      'ACCESS_DENIED',
    );

    // A txId that is not sha256(nonce ‖ creator).
    const p = buildProposal({
      channelId: 'mychannel',
      chaincodeName: 'kitchen',
      args: ['get', 'a'],
      creator: client.serialized,
      nonce: new Uint8Array(24).fill(7),
      timestamp: Date.now(),
      hash: sha256,
    });
    const badHeader = encodeHeader({
      channelHeader: encodeChannelHeader({ ...p.channelHeader, txId: 'ab'.repeat(32) }),
      signatureHeader: encodeSignatureHeader({
        creator: encodeSerializedIdentity(client.serialized),
        nonce: new Uint8Array(24).fill(7),
      }),
    });
    const { decodeProposal } = await import('@loom/common');
    const badProposal = encodeProposal({ header: badHeader, payload: decodeProposal(p.proposalBytes).payload });
    const badTx = encodeSignedProposal({
      proposalBytes: badProposal,
      signature: await client.signer.sign(badProposal),
    });
    expect(await rejectCode(endorser.processProposal(badTx))).toBe('BAD_PROPOSAL_TXID');

    committedTxIds.add(good.txId);
    expect(await rejectCode(endorser.processProposal(good.bytes))).toBe('DUPLICATE_TXID');

    const old = await signedProposal(client, { ...ok, timestamp: Date.now() - 20 * 60_000 });
    expect(await rejectCode(endorser.processProposal(old.bytes))).toBe('PROPOSAL_EXPIRED');
    const future = await signedProposal(client, { ...ok, timestamp: Date.now() + 20 * 60_000 });
    expect(await rejectCode(endorser.processProposal(future.bytes))).toBe('PROPOSAL_EXPIRED');

    const ghost = await signedProposal(client, { chaincode: 'ghost', args: ['x'] });
    expect(await rejectCode(endorser.processProposal(ghost.bytes))).toBe('CHAINCODE_NOT_FOUND');

    // Header type other than ENDORSER_TRANSACTION.
    const cfgHeader = encodeHeader({
      channelHeader: encodeChannelHeader({ ...p.channelHeader, type: HeaderType.CONFIG }),
      signatureHeader: encodeSignatureHeader({
        creator: encodeSerializedIdentity(client.serialized),
        nonce: new Uint8Array(24).fill(7),
      }),
    });
    const cfgProposal = encodeProposal({ header: cfgHeader, payload: decodeProposal(p.proposalBytes).payload });
    const cfg = encodeSignedProposal({ proposalBytes: cfgProposal, signature: await client.signer.sign(cfgProposal) });
    expect(await rejectCode(endorser.processProposal(cfg))).toBe('BAD_PROPOSAL');
    // Every rejection released its simulation slot (none was opened).
    expect(gate.activeSimulations).toBe(0);
  });
});

describe('runtime', () => {
  it('a package that cannot start, or is not installed, fails cleanly', async () => {
    definitions.set('broken', def('broken', 'broken:1'));
    definitions.set('uninstalled', def('uninstalled', 'uninstalled:1'));
    try {
      const started = Date.now();
      const e = await endorse(['get', 'a'], { chaincode: 'broken' }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(LoomError);
      expect((e as LoomError).code).toBe('CHAINCODE_START_FAILED');
      expect((e as LoomError).message).toMatch(/package\.json/);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(await rejectCode(endorse(['get', 'a'], { chaincode: 'uninstalled' }))).toBe('CHAINCODE_NOT_INSTALLED');
      expect((await endorse(['get', 'a'])).json).toEqual({ value: 'A' });
    } finally {
      definitions.delete('broken');
      definitions.delete('uninstalled');
    }
  });

  it('refuses REGISTER from a chaincode it did not launch', async () => {
    const [host, port] = runtime.address.split(':');
    const s = connect({ host: host!, port: Number(port) });
    const decoder = new FrameDecoder();
    const reply = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no reply')), 5000);
      s.on('data', (chunk: Uint8Array) => {
        for (const m of decoder.pushMessages(chunk)) {
          clearTimeout(t);
          resolve(m.type === 'ERROR' ? `ERROR ${m.payload.message}` : m.type);
        }
      });
      s.on('connect', () =>
        s.write(
          encodeChaincodeFrame({ type: 'REGISTER', txId: '', channelId: '', payload: { chaincodeId: 'rogue:1' } }),
        ),
      );
      s.on('error', reject);
    });
    s.destroy();
    expect(reply).toMatch(/^ERROR .*not launched/);
  });

  it('chaincode-as-a-service: the peer dials the chaincode server named by connection.json', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [sdkBin, 'server', '--module-path', join(tmp, 'kitchen')], {
      env: { PATH: process.env['PATH'] ?? '', CHAINCODE_SERVER_ADDRESS: `127.0.0.1:${port}`, CHAINCODE_ID: 'ext:1' },
      stdio: 'ignore',
    });
    children.push(child);
    const ext = createChaincodeRuntime({
      peerMspId: 'Org1MSP',
      packages: (id) =>
        id === 'ext:1'
          ? { kind: 'external', connection: { address: `127.0.0.1:${port}`, dial_timeout: '2s' } }
          : undefined,
    });
    try {
      definitions.set('ext', def('ext', 'ext:1'));
      const e = createEndorser({
        channels: () => channel,
        registry: { get: (_c, n) => definitions.get(n) },
        runtime: ext,
        signer: { identity: net.org1.peer.serialized, sign: (m) => net.org1.peer.signer.sign(m) },
      });
      // The server process needs a moment (long on a loaded machine) to start listening.
      await untilListening(port);
      const r = await endorse(['getput', 'k', 'v'], { chaincode: 'ext', e });
      expect(r.response.response.status).toBe(200);
      expect(nsOf(r, 'ext').rwset.writes).toEqual([{ key: 'k', isDelete: false, value: utf('v') }]);
    } finally {
      definitions.delete('ext');
      await ext.stop();
      child.kill('SIGKILL');
    }
  }, 90_000);

  it('chaincode-as-a-service over mutual TLS: tls_required, client_auth_required and the PEMs of connection.json', async () => {
    const { createEphemeralTlsCa } = await import('@loom/common/tls/index');
    const serverCa = await createEphemeralTlsCa('ccaas-server-ca');
    const clientCa = await createEphemeralTlsCa('peer-client-ca');
    const [serverPair, clientPair] = await Promise.all([
      serverCa.issueServer('ext-tls', ['127.0.0.1']),
      clientCa.issueClient('peer0.org1.example.com'),
    ]);
    const tlsDir = join(tmp, 'ccaas-tls');
    mkdirSync(tlsDir, { recursive: true });
    writeFileSync(join(tlsDir, 'server.crt'), serverPair.certPem);
    writeFileSync(join(tlsDir, 'server.key'), serverPair.keyPem);
    writeFileSync(join(tlsDir, 'client-ca.crt'), clientCa.certPem);
    const port = await freePort();
    const child = spawn(process.execPath, [sdkBin, 'server', '--module-path', join(tmp, 'kitchen')], {
      env: {
        PATH: process.env['PATH'] ?? '',
        CHAINCODE_SERVER_ADDRESS: `127.0.0.1:${port}`,
        CHAINCODE_ID: 'exttls:1',
        CHAINCODE_TLS_CERT_FILE: join(tlsDir, 'server.crt'),
        CHAINCODE_TLS_KEY_FILE: join(tlsDir, 'server.key'),
        CHAINCODE_TLS_CLIENT_CACERT_FILE: join(tlsDir, 'client-ca.crt'),
      },
      stdio: 'ignore',
    });
    children.push(child);
    const connection = {
      address: `127.0.0.1:${port}`,
      dial_timeout: '2s',
      tls_required: true,
      client_auth_required: true,
      root_cert: serverCa.certPem,
      client_cert: clientPair.certPem,
      client_key: clientPair.keyPem,
    };
    const variants: Record<string, object> = {
      'exttls:1': connection,
      // The server requires a client certificate: without one the peer cannot connect.
      'exttls-noclient:1': { ...connection, client_auth_required: false },
      'exttls-noroot:1': { ...connection, root_cert: undefined },
    };
    const ext = createChaincodeRuntime({
      peerMspId: 'Org1MSP',
      packages: (id) => (variants[id] ? { kind: 'external', connection: variants[id] as never } : undefined),
    });
    try {
      definitions.set('exttls', def('exttls', 'exttls:1'));
      definitions.set('exttls-noclient', def('exttls-noclient', 'exttls-noclient:1'));
      definitions.set('exttls-noroot', def('exttls-noroot', 'exttls-noroot:1'));
      const e = createEndorser({
        channels: () => channel,
        registry: { get: (_c, n) => definitions.get(n) },
        runtime: ext,
        signer: { identity: net.org1.peer.serialized, sign: (m) => net.org1.peer.signer.sign(m) },
      });
      await untilListening(port);
      const r = await endorse(['getput', 'k', 'v'], { chaincode: 'exttls', e });
      expect(r.response.response.status).toBe(200);
      expect(await rejectCode(endorse(['getput', 'k', 'v'], { chaincode: 'exttls-noclient', e }))).toBe(
        'CHAINCODE_START_FAILED',
      );
      await expect(endorse(['getput', 'k', 'v'], { chaincode: 'exttls-noroot', e })).rejects.toThrow(/root_cert/);
    } finally {
      for (const n of ['exttls', 'exttls-noclient', 'exttls-noroot']) definitions.delete(n);
      await ext.stop();
      child.kill('SIGKILL');
    }
  }, 90_000);
});

describe('endorsed rwsets through the block validator', () => {
  /** Wraps an endorsement into a transaction envelope as the client would, and validates it in a block. */
  async function validateEndorsed(signedBytes: Uint8Array, r: ProposalResult, blockNum: number) {
    const { decodeSignedProposal, decodeProposal, decodeChaincodeProposalPayload } = await import('@loom/common');
    const proposal = decodeProposal(decodeSignedProposal(signedBytes).proposalBytes);
    const inputBytes = decodeChaincodeProposalPayload(proposal.payload).input;
    const payload = buildTransactionPayload({ headerBytes: proposal.header, inputBytes }, r.response.payload, [
      r.response.endorsement!,
    ]);
    const envelope = encodeEnvelope({ payload, signature: await net.org1.client.signer.sign(payload) });
    const block = buildBlock(
      blockNum,
      GENESIS_PREVIOUS_HASH,
      [envelope],
      encodeConsenterMetadata({ lastConfig: 0, raftIndex: 0 }),
      sha256,
    );
    return validateBlock(block, {
      channelId: 'mychannel',
      stateReader: stores.reader,
      msp: channel.msp,
      policies: createEndorsementPolicySource(applicationPoliciesOf(net.config), {
        chaincode: (ns) => definitions.get(ns)?.endorsementPolicy,
      }),
      signatureVerifier: createSignatureVerifier({ poolSize: 0 }),
      hash: sha256,
    });
  }

  it('a range read validates, and a key inserted into the range afterwards is a phantom', async () => {
    const sp = await signedProposal(net.org1.client, { chaincode: 'kitchen', args: ['range', 'm', 'n'] });
    const r = await endorser.processProposal(sp.bytes);
    expect(JSON.parse(str(r.response.response.payload))).toEqual([]);
    expect((await validateEndorsed(sp.bytes, r, 40)).codes[0]).toBe(TxValidationCode.VALID);
    const batch = stores.kv.batch();
    await stores.state.applyUpdates(
      batch,
      [{ namespace: 'kitchen', key: 'm1', kind: 'put', value: utf('x'), version: v(41, 0) }],
      42,
    );
    await batch.write();
    expect((await validateEndorsed(sp.bytes, r, 42)).codes[0]).toBe(TxValidationCode.PHANTOM_READ_CONFLICT);
  });

  it('a private write validates into the hashed namespace', async () => {
    const sp = await signedProposal(net.org1.client, {
      chaincode: 'kitchen',
      args: ['pput', 'secret', 'p7'],
      transient: { value: utf('seven') },
    });
    const r = await endorser.processProposal(sp.bytes);
    const res = await validateEndorsed(sp.bytes, r, 43);
    expect(res.codes[0]).toBe(TxValidationCode.VALID);
    expect(res.updates).toEqual([
      expect.objectContaining({ namespace: 'kitchen', collection: 'secret', key: keyHashHex('p7'), kind: 'put' }),
    ]);
    expect(res.updates[0]!.value).toEqual(sha256(utf('seven')));
  });
});

describe('simulator', () => {
  it('holds the commit gate for its window, so a commit waits for it', async () => {
    const sim = await startSimulation(channel.ledger, { txId: 't-gate', channelId: 'mychannel' });
    expect(gate.activeSimulations).toBe(1);
    let committed = false;
    const commit = gate.exclusive(async () => {
      committed = true;
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(committed).toBe(false);
    expect(await sim.getState('kitchen', 'c')).toEqual(utf('C'));
    sim.setState('kitchen', 'z', utf('1'));
    sim.setState('kitchen', 'y', utf('2'));
    sim.setState('kitchen', 'y', utf('3'));
    sim.setState('kitchen', 'x', new Uint8Array(0));
    const res = await sim.results();
    expect(res.rwset.nsRwsets[0]!.rwset.writes).toEqual([
      { key: 'x', isDelete: true, value: new Uint8Array(0) },
      { key: 'y', isDelete: false, value: utf('3') },
      { key: 'z', isDelete: false, value: utf('1') },
    ]);
    await sim.done();
    await commit;
    expect(committed).toBe(true);
    expect(gate.activeSimulations).toBe(0);
    await expect(sim.getState('kitchen', 'c')).rejects.toThrow(/finished/);
  });

  it('produces identical bytes for the same operations in any order', async () => {
    const run = async (order: number[]) => {
      const sim = await startSimulation(channel.ledger, { txId: 't', channelId: 'mychannel' });
      const ops = [
        () => sim.getState('kitchen', 'b'),
        () => sim.getState('kitchen', 'a'),
        async () => sim.setState('kitchen2', 'q', utf('1')),
        async () => sim.setPrivateData('kitchen', 'secret', 'p9', utf('9')),
        () => sim.getPrivateDataHash('kitchen', 'secret', 'p1'),
      ];
      for (const i of order) await ops[i]!();
      const r = await sim.results();
      await sim.done();
      return r;
    };
    const a = await run([0, 1, 2, 3, 4]);
    const b = await run([4, 3, 2, 1, 0]);
    expect(bytesEqual(a.rwsetBytes, b.rwsetBytes)).toBe(true);
    expect(bytesEqual(a.pvtRwsetBytes!, b.pvtRwsetBytes!)).toBe(true);
    expect(a.rwset.nsRwsets.map((n) => n.namespace)).toEqual(['kitchen', 'kitchen2']);
    expect(hashedNamespace('kitchen', 'secret')).toBe('kitchen$$hsecret');
  });
});

/** Resolves once something accepts TCP connections on 127.0.0.1:`port` (bounded). */
async function untilListening(port: number, timeoutMs = 45_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}
