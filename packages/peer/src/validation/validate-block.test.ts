import { randomBytes } from 'node:crypto';
import {
  type Bytes,
  buildBlock,
  type ChannelHeader,
  computeProposalHash,
  computeTxId,
  encodeChaincodeAction,
  encodeChaincodeEvent,
  encodeChaincodeInvocationSpec,
  encodeChannelHeader,
  encodeConsenterMetadata,
  encodeEnvelope,
  encodeHeader,
  encodePayload,
  encodeProposalResponsePayload,
  encodeSerializedIdentity,
  encodeSignatureHeader,
  encodeTxReadWriteSet,
  endorsementSignedBytes,
  GENESIS_PREVIOUS_HASH,
  HeaderType,
  type KVRWSet,
  type NsReadWriteSet,
  type TxReadWriteSet,
  TxValidationCode,
  txValidationCodeName,
  buildTransactionPayload,
  utf8,
  type Version,
} from '@loom/common';
import { sha256 } from '@loom/common/crypto/hash';
import { MspManager } from '@loom/common/msp/msp-manager';
import { ChannelPolicies } from '@loom/common/policy/index';
import { createTestOrg, type TestIdentity, type TestOrg } from '@loom/common/testing/index';
import { beforeAll, describe, expect, it } from 'vitest';
import { createEndorsementPolicySource } from './policies.js';
import { createSignatureVerifier } from './signature-verifier.js';
import { compareKeys, hashedNamespace, type StateReader, VALIDATION_PARAMETER } from './state-reader.js';
import type { BlockValidationContext } from './types.js';
import { validateBlock } from './validate-block.js';

const CHANNEL = 'ch1';
const CC = 'cc';

// ---- fixtures ---------------------------------------------------------------------------------

class MemoryState implements StateReader {
  readonly data = new Map<string, Map<string, { version: Version; metadata?: Map<string, Uint8Array> }>>();
  readonly txIds = new Set<string>();
  set(ns: string, key: string, version: Version, metadata?: Map<string, Uint8Array>): this {
    let m = this.data.get(ns);
    if (!m) {
      m = new Map();
      this.data.set(ns, m);
    }
    m.set(key, { version, metadata });
    return this;
  }
  async getVersion(ns: string, key: string) {
    return this.data.get(ns)?.get(key)?.version;
  }
  async getMetadata(ns: string, key: string) {
    return this.data.get(ns)?.get(key)?.metadata;
  }
  async *rangeScan(ns: string, start: string, end: string) {
    const keys = [...(this.data.get(ns)?.keys() ?? [])]
      .filter((k) => compareKeys(k, start) >= 0 && (end === '' || compareKeys(k, end) < 0))
      .sort(compareKeys);
    for (const key of keys) yield { key, version: this.data.get(ns)!.get(key)!.version };
  }
  async isTxIdCommitted(txId: string) {
    return this.txIds.has(txId);
  }
}

const emptyKV = (): KVRWSet => ({ reads: [], rangeQueriesInfo: [], writes: [], metadataWrites: [] });
const nsSet = (kv: Partial<KVRWSet>, namespace = CC, collections: NsReadWriteSet['collectionHashedRwsets'] = []) => ({
  nsRwsets: [{ namespace, rwset: { ...emptyKV(), ...kv }, collectionHashedRwsets: collections }],
});
const v = (blockNum: number, txNum: number): Version => ({ blockNum, txNum });
const put = (key: string, value = 'x') => ({ key, isDelete: false, value: utf8(value) });

interface TxOptions {
  creator?: TestIdentity;
  endorsers?: TestIdentity[];
  rwset?: TxReadWriteSet;
  channelId?: string;
  type?: ChannelHeader['type'];
  txId?: string;
  nonce?: Bytes;
  proposalHash?: Bytes;
  event?: string;
  /** Raw ChaincodeAction.results instead of the encoded rwset. */
  results?: Bytes;
  status?: number;
  extension?: string;
  /** Replace the creator's signature. */
  badCreatorSig?: boolean;
  badEndorsementSig?: boolean;
}

let org1: TestOrg;
let org2: TestOrg;
let org3: TestOrg; // not a channel member

async function makeTx(o: TxOptions = {}): Promise<{ envelope: Bytes; txId: string }> {
  const creator = o.creator ?? org1.client;
  const creatorBytes = encodeSerializedIdentity(creator.serialized);
  const nonce = o.nonce ?? new Uint8Array(randomBytes(24));
  const txId = o.txId ?? computeTxId(nonce, creatorBytes, sha256);
  const headerBytes = encodeHeader({
    channelHeader: encodeChannelHeader({
      type: o.type ?? HeaderType.ENDORSER_TRANSACTION,
      version: 1,
      channelId: o.channelId ?? CHANNEL,
      txId,
      timestamp: 1_700_000_000_000,
      extension: utf8(o.extension ?? CC),
    }),
    signatureHeader: encodeSignatureHeader({ creator: creatorBytes, nonce }),
  });
  const inputBytes = encodeChaincodeInvocationSpec({ chaincodeName: CC, args: [utf8('fn')], isInit: false });
  const prp = encodeProposalResponsePayload({
    proposalHash: o.proposalHash ?? computeProposalHash(headerBytes, inputBytes, sha256),
    extension: encodeChaincodeAction({
      results: o.results ?? encodeTxReadWriteSet(o.rwset ?? nsSet({ writes: [put('k')] })),
      events:
        o.event === undefined
          ? new Uint8Array(0)
          : encodeChaincodeEvent({ chaincodeId: CC, txId, eventName: o.event, payload: utf8('e') }),
      response: { status: o.status ?? 200, message: '', payload: new Uint8Array(0) },
      chaincodeName: CC,
      chaincodeVersion: '1',
    }),
  });
  const endorsements = await Promise.all(
    (o.endorsers ?? [org1.peer, org2.peer]).map(async (e) => {
      const endorser = encodeSerializedIdentity(e.serialized);
      const signature = await e.signer.sign(
        o.badEndorsementSig ? utf8('something else') : endorsementSignedBytes(prp, endorser),
      );
      return { endorser, signature };
    }),
  );
  const payload =
    o.type === HeaderType.CONFIG
      ? encodePayload({ header: headerBytes, data: utf8('config envelope') })
      : buildTransactionPayload({ headerBytes, inputBytes }, prp, endorsements);
  const signature = await creator.signer.sign(o.badCreatorSig ? utf8('not the payload') : payload);
  return { envelope: encodeEnvelope({ payload, signature }), txId };
}

const block = (num: number, data: Bytes[]) =>
  buildBlock(num, GENESIS_PREVIOUS_HASH, data, encodeConsenterMetadata({ lastConfig: 0, raftIndex: 0 }), sha256);

let ctxBase: Omit<BlockValidationContext, 'stateReader'>;
const verifier = createSignatureVerifier({ poolSize: 0 });

beforeAll(async () => {
  [org1, org2, org3] = await Promise.all([
    createTestOrg('Org1MSP'),
    createTestOrg('Org2MSP'),
    createTestOrg('Org3MSP'),
  ]);
  const msp = new MspManager([org1.mspConfig(), org2.mspConfig()]);
  const channelPolicies = new ChannelPolicies({
    orgs: {
      Org1MSP: { Endorsement: "'Org1MSP.peer'" },
      Org2MSP: { Endorsement: "'Org2MSP.peer'" },
    },
    channel: {},
  });
  const policies = createEndorsementPolicySource(channelPolicies, {
    chaincode: (ns) => (ns === CC ? 'MAJORITY Endorsement' : ns === 'cc2' ? "'Org2MSP.peer'" : undefined),
    collection: (_ns, coll) => (coll === 'org1only' ? "'Org1MSP.peer'" : undefined),
  });
  ctxBase = { channelId: CHANNEL, msp, policies, signatureVerifier: verifier, hash: sha256 };
}, 60_000);

async function validate(data: Bytes[], state = new MemoryState(), num = 5) {
  const r = await validateBlock(block(num, data), { ...ctxBase, stateReader: state });
  return { ...r, names: [...r.codes].map(txValidationCodeName) };
}

// ---- tests --------------------------------------------------------------------------------------

describe('validateBlock', () => {
  it('accepts a well-formed, endorsed transaction and returns its writes, history and event', async () => {
    const { envelope, txId } = await makeTx({
      rwset: nsSet({
        reads: [{ key: 'r', version: null }],
        writes: [put('k', 'v1'), { key: 'gone', isDelete: true, value: new Uint8Array(0) }],
      }),
      event: 'Created',
    });
    const r = await validate([envelope]);
    expect(r.names).toEqual(['VALID']);
    expect(r.blockNum).toBe(5);
    expect(r.updates.map((u) => [u.namespace, u.key, u.kind, u.version])).toEqual([
      [CC, 'k', 'put', v(5, 0)],
      [CC, 'gone', 'delete', v(5, 0)],
    ]);
    expect(r.history.map((h) => [h.key, h.isDelete])).toEqual([
      ['k', false],
      ['gone', true],
    ]);
    const info = r.transactions[0]!;
    expect(info.txId).toBe(txId);
    expect(info.isConfig).toBe(false);
    expect(info.chaincodeEvent?.eventName).toBe('Created');
    expect(info.envelopeHash).toEqual(sha256(envelope));
  });

  it('NIL_ENVELOPE, BAD_PAYLOAD and BAD_COMMON_HEADER for malformed bytes', async () => {
    const badHeader = encodeEnvelope({
      payload: encodePayload({ header: utf8('not a header'), data: new Uint8Array(0) }),
      signature: new Uint8Array(0),
    });
    const badPayload = encodeEnvelope({ payload: utf8('garbage'), signature: new Uint8Array(0) });
    const r = await validate([new Uint8Array(0), utf8('garbage'), badPayload, badHeader]);
    expect(r.names).toEqual(['NIL_ENVELOPE', 'BAD_PAYLOAD', 'BAD_PAYLOAD', 'BAD_COMMON_HEADER']);
    expect(r.updates).toEqual([]);
  });

  it('TARGET_CHAIN_NOT_FOUND for another channel', async () => {
    const r = await validate([(await makeTx({ channelId: 'other' })).envelope]);
    expect(r.names).toEqual(['TARGET_CHAIN_NOT_FOUND']);
  });

  it('BAD_CREATOR_SIGNATURE for a bad signature or a creator outside the channel', async () => {
    const r = await validate([
      (await makeTx({ badCreatorSig: true })).envelope,
      (await makeTx({ creator: org3.client })).envelope,
    ]);
    expect(r.names).toEqual(['BAD_CREATOR_SIGNATURE', 'BAD_CREATOR_SIGNATURE']);
  });

  it('BAD_PROPOSAL_TXID when txId is not sha256(nonce ‖ creator)', async () => {
    const r = await validate([(await makeTx({ txId: 'ab'.repeat(32) })).envelope]);
    expect(r.names).toEqual(['BAD_PROPOSAL_TXID']);
  });

  it('DUPLICATE_TXID for a txId earlier in the block or already committed', async () => {
    const a = await makeTx();
    const b = await makeTx({ rwset: nsSet({ writes: [put('other')] }) });
    const state = new MemoryState();
    state.txIds.add(b.txId);
    const r = await validate([a.envelope, a.envelope, b.envelope], state);
    expect(r.names).toEqual(['VALID', 'DUPLICATE_TXID', 'DUPLICATE_TXID']);
    expect(r.updates).toHaveLength(1);
  });

  it('BAD_RESPONSE_PAYLOAD when the endorsed proposal hash is for another proposal', async () => {
    const r = await validate([(await makeTx({ proposalHash: sha256(utf8('other proposal')) })).envelope]);
    expect(r.names).toEqual(['BAD_RESPONSE_PAYLOAD']);
  });

  it('BAD_RWSET, BAD_HEADER_EXTENSION and INVALID_ENDORSER_TRANSACTION for inconsistent endorser transactions', async () => {
    const r = await validate([
      (await makeTx({ results: utf8('not an rwset') })).envelope,
      (await makeTx({ extension: 'othercc' })).envelope,
      (await makeTx({ status: 500 })).envelope,
    ]);
    expect(r.names).toEqual(['BAD_RWSET', 'BAD_HEADER_EXTENSION', 'INVALID_ENDORSER_TRANSACTION']);
  });

  it('UNKNOWN_TX_TYPE for header types peers do not commit', async () => {
    const r = await validate([(await makeTx({ type: HeaderType.MESSAGE })).envelope]);
    expect(r.names).toEqual(['UNKNOWN_TX_TYPE']);
  });

  it('CONFIG transactions pass as VALID, flagged, with no state updates', async () => {
    const r = await validate([(await makeTx({ type: HeaderType.CONFIG })).envelope]);
    expect(r.names).toEqual(['VALID']);
    expect(r.transactions[0]!.isConfig).toBe(true);
    expect(r.updates).toEqual([]);
  });

  it('ENDORSEMENT_POLICY_FAILURE: too few endorsers, a bad endorsement signature, a non-member endorser', async () => {
    const r = await validate([
      (await makeTx({ endorsers: [org1.peer] })).envelope,
      (await makeTx({ badEndorsementSig: true })).envelope,
      (await makeTx({ endorsers: [org1.peer, org3.peer] })).envelope,
      (await makeTx({ endorsers: [] })).envelope,
      (await makeTx({ endorsers: [org1.peer, org2.client] })).envelope, // wrong role
      (await makeTx({ endorsers: [org2.peer, org1.peer] })).envelope,
    ]);
    expect(r.names).toEqual([
      'ENDORSEMENT_POLICY_FAILURE',
      'ENDORSEMENT_POLICY_FAILURE',
      'ENDORSEMENT_POLICY_FAILURE',
      'ENDORSEMENT_POLICY_FAILURE',
      'ENDORSEMENT_POLICY_FAILURE',
      'VALID',
    ]);
  });

  it('INVALID_CHAINCODE when the rwset writes a namespace with no chaincode definition', async () => {
    const rwset = {
      nsRwsets: [...nsSet({ writes: [put('k')] }).nsRwsets, ...nsSet({ writes: [put('k')] }, 'ghost').nsRwsets],
    };
    const r = await validate([(await makeTx({ rwset })).envelope]);
    expect(r.names).toEqual(['INVALID_CHAINCODE']);
  });

  it("each written namespace needs its own chaincode's policy (cc2 wants Org2 only)", async () => {
    const rwset = {
      nsRwsets: [...nsSet({ writes: [put('k')] }).nsRwsets, ...nsSet({ writes: [put('k')] }, 'cc2').nsRwsets],
    };
    const r = await validate([
      (await makeTx({ rwset })).envelope,
      (await makeTx({ rwset, endorsers: [org1.peer, org1.admin] })).envelope,
    ]);
    expect(r.names).toEqual(['VALID', 'ENDORSEMENT_POLICY_FAILURE']);
  });

  describe('key-level (state-based) endorsement', () => {
    const vp = (text: string) => new Map([[VALIDATION_PARAMETER, utf8(text)]]);

    it("a key's VALIDATION_PARAMETER replaces the chaincode policy for that key", async () => {
      const state = new MemoryState().set(CC, 'owned', v(1, 0), vp("'Org1MSP.peer'"));
      const r = await validate(
        [
          // Only Org1 endorses: enough for the key-level policy, though the chaincode's wants both orgs.
          (await makeTx({ endorsers: [org1.peer], rwset: nsSet({ writes: [put('owned')] }) })).envelope,
          // The same endorsement touching a key without a key-level policy needs the chaincode's.
          (await makeTx({ endorsers: [org1.peer], rwset: nsSet({ writes: [put('owned'), put('plain')] }) })).envelope,
        ],
        state,
      );
      expect(r.names).toEqual(['VALID', 'ENDORSEMENT_POLICY_FAILURE']);
    });

    it('a stricter key-level policy fails even when the chaincode policy holds', async () => {
      const state = new MemoryState().set(CC, 'guarded', v(1, 0), vp("AND('Org1MSP.peer', 'Org2MSP.admin')"));
      const r = await validate(
        [
          (await makeTx({ rwset: nsSet({ writes: [put('guarded')] }) })).envelope,
          (await makeTx({ endorsers: [org1.peer, org2.admin], rwset: nsSet({ writes: [put('guarded')] }) })).envelope,
        ],
        state,
      );
      expect(r.names).toEqual(['ENDORSEMENT_POLICY_FAILURE', 'VALID']);
    });

    it('a key-level policy set by an earlier valid tx of the block governs later ones', async () => {
      const setVp = nsSet({ metadataWrites: [{ key: 'm', entries: vp("'Org1MSP.admin'") }] });
      const state = new MemoryState().set(CC, 'm', v(1, 0));
      const r = await validate(
        [
          (await makeTx({ rwset: setVp })).envelope,
          (await makeTx({ rwset: nsSet({ writes: [put('m')] }) })).envelope, // org1.peer + org2.peer: no Org1 admin
          (await makeTx({ rwset: nsSet({ reads: [{ key: 'm', version: v(5, 0) }] }) })).envelope,
        ],
        state,
      );
      expect(r.names).toEqual(['VALID', 'ENDORSEMENT_POLICY_FAILURE', 'VALID']);
      expect(r.updates.map((u) => [u.key, u.kind])).toEqual([['m', 'metadata']]);
    });

    it('metadata for a key that does not exist is dropped', async () => {
      const setVp = nsSet({ metadataWrites: [{ key: 'nokey', entries: vp("'Org1MSP.admin'") }] });
      const r = await validate([
        (await makeTx({ rwset: setVp })).envelope,
        (await makeTx({ rwset: nsSet({ writes: [put('nokey')] }) })).envelope,
      ]);
      expect(r.names).toEqual(['VALID', 'VALID']);
      expect(r.updates.map((u) => [u.key, u.kind])).toEqual([['nokey', 'put']]);
    });
  });

  it('private writes follow the collection endorsement policy, else the chaincode policy', async () => {
    const hashed = (coll: string) => [
      {
        collectionName: coll,
        hashedRwset: {
          hashedReads: [],
          hashedWrites: [
            { keyHash: sha256(utf8('pk')), isDelete: false, valueHash: sha256(utf8('pv')), isPurge: false },
          ],
          metadataWrites: [],
        },
        pvtRwsetHash: sha256(utf8('pvt')),
      },
    ];
    const r = await validate([
      (await makeTx({ endorsers: [org1.peer], rwset: nsSet({}, CC, hashed('org1only')) })).envelope,
      (await makeTx({ endorsers: [org1.peer], rwset: nsSet({}, CC, hashed('open')) })).envelope,
    ]);
    expect(r.names).toEqual(['VALID', 'ENDORSEMENT_POLICY_FAILURE']);
    expect(r.updates).toHaveLength(1);
    expect(r.updates[0]).toMatchObject({ namespace: CC, collection: 'org1only', kind: 'put', version: v(5, 0) });
    expect(r.updates[0]!.key).toBe(Buffer.from(sha256(utf8('pk'))).toString('hex'));
  });

  describe('MVCC', () => {
    it('a read whose version moved on is MVCC_READ_CONFLICT', async () => {
      const state = new MemoryState().set(CC, 'k', v(3, 1));
      const r = await validate(
        [
          (await makeTx({ rwset: nsSet({ reads: [{ key: 'k', version: v(2, 0) }] }) })).envelope,
          (await makeTx({ rwset: nsSet({ reads: [{ key: 'k', version: null }] }) })).envelope,
          (await makeTx({ rwset: nsSet({ reads: [{ key: 'k', version: v(3, 1) }] }) })).envelope,
        ],
        state,
      );
      expect(r.names).toEqual(['MVCC_READ_CONFLICT', 'MVCC_READ_CONFLICT', 'VALID']);
    });

    it('a read of a key written by an earlier valid tx of the same block conflicts', async () => {
      const state = new MemoryState().set(CC, 'k', v(3, 1));
      const r = await validate(
        [
          (await makeTx({ rwset: nsSet({ reads: [{ key: 'k', version: v(3, 1) }], writes: [put('k')] }) })).envelope,
          (await makeTx({ rwset: nsSet({ reads: [{ key: 'k', version: v(3, 1) }], writes: [put('k')] }) })).envelope,
          // Reading the version tx 0 wrote is current.
          (await makeTx({ rwset: nsSet({ reads: [{ key: 'k', version: v(5, 0) }] }) })).envelope,
        ],
        state,
      );
      expect(r.names).toEqual(['VALID', 'MVCC_READ_CONFLICT', 'VALID']);
      expect(r.updates.map((u) => u.version)).toEqual([v(5, 0)]);
    });

    it('an invalid earlier tx does not cause a conflict', async () => {
      const state = new MemoryState().set(CC, 'k', v(3, 1));
      const rw = nsSet({ reads: [{ key: 'k', version: v(3, 1) }], writes: [put('k')] });
      const r = await validate(
        [(await makeTx({ rwset: rw, endorsers: [org1.peer] })).envelope, (await makeTx({ rwset: rw })).envelope],
        state,
      );
      expect(r.names).toEqual(['ENDORSEMENT_POLICY_FAILURE', 'VALID']);
      expect(r.updates.map((u) => u.version)).toEqual([v(5, 1)]);
    });

    it('a key deleted earlier in the block reads as absent', async () => {
      const state = new MemoryState().set(CC, 'k', v(3, 1));
      const r = await validate(
        [
          (await makeTx({ rwset: nsSet({ writes: [{ key: 'k', isDelete: true, value: new Uint8Array(0) }] }) }))
            .envelope,
          (await makeTx({ rwset: nsSet({ reads: [{ key: 'k', version: null }] }) })).envelope,
        ],
        state,
      );
      expect(r.names).toEqual(['VALID', 'VALID']);
    });

    it('private (hashed) reads are checked too', async () => {
      const keyHash = sha256(utf8('pk'));
      const state = new MemoryState().set(
        hashedNamespace(CC, 'org1only'),
        Buffer.from(keyHash).toString('hex'),
        v(2, 2),
      );
      const rw = (version: Version | null) =>
        nsSet({}, CC, [
          {
            collectionName: 'org1only',
            hashedRwset: { hashedReads: [{ keyHash, version }], hashedWrites: [], metadataWrites: [] },
            pvtRwsetHash: sha256(utf8('pvt')),
          },
        ]);
      const r = await validate(
        [(await makeTx({ rwset: rw(v(2, 2)) })).envelope, (await makeTx({ rwset: rw(v(1, 0)) })).envelope],
        state,
      );
      expect(r.names).toEqual(['VALID', 'MVCC_READ_CONFLICT']);
    });
  });

  describe('phantom reads', () => {
    const range = (reads: [string, Version][], itrExhausted = true, startKey = 'a', endKey = 'z') =>
      nsSet({
        rangeQueriesInfo: [
          { startKey, endKey, itrExhausted, reads: reads.map(([key, version]) => ({ key, version })) },
        ],
      });

    it('a key inserted into the range by committed state is PHANTOM_READ_CONFLICT', async () => {
      const state = new MemoryState().set(CC, 'a1', v(1, 0)).set(CC, 'b1', v(2, 0)).set(CC, 'c1', v(1, 1));
      const r = await validate(
        [
          (
            await makeTx({
              rwset: range([
                ['a1', v(1, 0)],
                ['c1', v(1, 1)],
              ]),
            })
          ).envelope,
          (
            await makeTx({
              rwset: range([
                ['a1', v(1, 0)],
                ['b1', v(2, 0)],
                ['c1', v(1, 1)],
              ]),
            })
          ).envelope,
          // Not exhausted: keys past the last one read do not matter.
          (await makeTx({ rwset: range([['a1', v(1, 0)]], false) })).envelope,
          // End key is exclusive.
          (await makeTx({ rwset: range([['a1', v(1, 0)]], true, 'a', 'b1') })).envelope,
          // A changed version inside the range.
          (
            await makeTx({
              rwset: range([
                ['a1', v(1, 0)],
                ['b1', v(1, 9)],
                ['c1', v(1, 1)],
              ]),
            })
          ).envelope,
        ],
        state,
      );
      expect(r.names).toEqual(['PHANTOM_READ_CONFLICT', 'VALID', 'VALID', 'VALID', 'PHANTOM_READ_CONFLICT']);
    });

    it('a key inserted or deleted by an earlier valid tx of the block is a phantom', async () => {
      const state = new MemoryState().set(CC, 'a1', v(1, 0)).set(CC, 'c1', v(1, 1));
      const committedRange = range([
        ['a1', v(1, 0)],
        ['c1', v(1, 1)],
      ]);
      const r = await validate(
        [
          (await makeTx({ rwset: committedRange })).envelope,
          (await makeTx({ rwset: nsSet({ writes: [put('b1')] }) })).envelope,
          (await makeTx({ rwset: committedRange })).envelope,
          (
            await makeTx({
              rwset: range([
                ['a1', v(1, 0)],
                ['b1', v(5, 1)],
                ['c1', v(1, 1)],
              ]),
            })
          ).envelope,
          (await makeTx({ rwset: nsSet({ writes: [{ key: 'a1', isDelete: true, value: new Uint8Array(0) }] }) }))
            .envelope,
          (
            await makeTx({
              rwset: range([
                ['b1', v(5, 1)],
                ['c1', v(1, 1)],
              ]),
            })
          ).envelope,
          // Outside the range: no effect.
          (await makeTx({ rwset: nsSet({ writes: [put('zz')] }) })).envelope,
          (
            await makeTx({
              rwset: range([
                ['b1', v(5, 1)],
                ['c1', v(1, 1)],
              ]),
            })
          ).envelope,
        ],
        state,
      );
      expect(r.names).toEqual(['VALID', 'VALID', 'PHANTOM_READ_CONFLICT', 'VALID', 'VALID', 'VALID', 'VALID', 'VALID']);
    });
  });

  it('a block mixing valid and invalid transactions gets one code per transaction, in order', async () => {
    const txs = await Promise.all([
      makeTx({ rwset: nsSet({ writes: [put('a')] }) }),
      makeTx({ badCreatorSig: true, rwset: nsSet({ writes: [put('b')] }) }),
      makeTx({ rwset: nsSet({ writes: [put('c')] }) }),
    ]);
    const r = await validate(txs.map((t) => t.envelope));
    expect([...r.codes]).toEqual([
      TxValidationCode.VALID,
      TxValidationCode.BAD_CREATOR_SIGNATURE,
      TxValidationCode.VALID,
    ]);
    expect(r.updates.map((u) => u.key)).toEqual(['a', 'c']);
    expect(r.transactions.map((t) => t.txId)).toEqual(txs.map((t) => t.txId));
  });

  describe('state reads prefetched per block', () => {
    /** A reader with the batch read, counting how it is asked. */
    class BatchState extends MemoryState {
      single = 0;
      batches: string[][] = [];
      override async getVersion(ns: string, key: string) {
        this.single++;
        return super.getVersion(ns, key);
      }
      async getVersionsAndMetadata(ns: string, keys: readonly string[]) {
        this.batches.push([...keys]);
        return keys.map((k) => {
          const e = this.data.get(ns)?.get(k);
          return e ? { version: e.version, metadata: e.metadata } : undefined;
        });
      }
    }

    it("reads the block's keys in one batch per namespace and gives the same codes", async () => {
      const state = new BatchState().set(CC, 'a', v(3, 1)).set(CC, 'b', v(3, 2));
      const r = await validate(
        [
          (await makeTx({ rwset: nsSet({ reads: [{ key: 'a', version: v(3, 1) }], writes: [put('a')] }) })).envelope,
          (await makeTx({ rwset: nsSet({ reads: [{ key: 'a', version: v(3, 1) }] }) })).envelope,
          (await makeTx({ rwset: nsSet({ reads: [{ key: 'b', version: v(2, 0) }] }) })).envelope,
          (await makeTx({ rwset: nsSet({ reads: [{ key: 'c', version: null }], writes: [put('c')] }) })).envelope,
        ],
        state,
      );
      expect(r.names).toEqual(['VALID', 'MVCC_READ_CONFLICT', 'MVCC_READ_CONFLICT', 'VALID']);
      expect(state.batches).toHaveLength(1);
      expect([...state.batches[0]!].sort()).toEqual(['a', 'b', 'c']);
      expect(state.single).toBe(0);
    });

    it('a failed prefetch read is read again only by a transaction that gets that far', async () => {
      class Flaky extends MemoryState {
        calls = 0;
        override async getVersion(ns: string, key: string) {
          if (key === 'boom') {
            this.calls++;
            throw new Error('disk error');
          }
          return super.getVersion(ns, key);
        }
      }
      // The transaction reading the unreadable key fails earlier (bad creator signature): the block validates.
      const state = new Flaky();
      const r = await validate(
        [
          (await makeTx({ badCreatorSig: true, rwset: nsSet({ reads: [{ key: 'boom', version: null }] }) })).envelope,
          (await makeTx({ rwset: nsSet({ reads: [{ key: 'ok', version: null }] }) })).envelope,
        ],
        state,
      );
      expect(r.names).toEqual(['BAD_CREATOR_SIGNATURE', 'VALID']);
      expect(state.calls).toBe(1);
      // A valid transaction that needs it gets the reader's error, as without prefetching.
      await expect(
        validate([(await makeTx({ rwset: nsSet({ reads: [{ key: 'boom', version: null }] }) })).envelope], new Flaky()),
      ).rejects.toThrow('disk error');
    });

    it("range checks see the block's earlier deletes through the prefetched range", async () => {
      // The block deletes range keys before the range query's transaction: the prefetch bound covers it.
      const state = new BatchState();
      for (const k of ['r1', 'r2', 'r3', 'r4']) state.set(CC, k, v(1, 0));
      const del = (key: string) => ({ key, isDelete: true, value: new Uint8Array(0) });
      const range = {
        startKey: 'r',
        endKey: 's',
        itrExhausted: true,
        reads: [
          { key: 'r3', version: v(1, 0) },
          { key: 'r4', version: v(1, 0) },
        ],
      };
      const r = await validate(
        [
          (await makeTx({ rwset: nsSet({ writes: [del('r1'), del('r2')] }) })).envelope,
          (await makeTx({ rwset: nsSet({ rangeQueriesInfo: [range] }) })).envelope,
          (await makeTx({ rwset: nsSet({ rangeQueriesInfo: [{ ...range, reads: [range.reads[0]!] }] }) })).envelope,
        ],
        state,
      );
      expect(r.names).toEqual(['VALID', 'VALID', 'PHANTOM_READ_CONFLICT']);
    });
  });

  it('checks a transaction as soon as its signatures are answered, not after the whole block', async () => {
    // 130 transactions = 390 signatures = three verifier chunks (180, 180, 30).
    const bad = new Set([0, 70, 125]);
    const txs = await Promise.all(
      Array.from({ length: 130 }, (_, i) =>
        makeTx({ badCreatorSig: bad.has(i), rwset: nsSet({ writes: [put(`k${i}`)] }) }),
      ),
    );
    let policyLookups = 0;
    let lookupsWhenLastAnswered = -1;
    const chunks: number[] = [];
    const slowLast = {
      async verifyMany(items: Parameters<typeof verifier.verifyMany>[0]) {
        chunks.push(items.length);
        const answers = await verifier.verifyMany(items);
        if (chunks.length === 3) {
          // Held until pass 2 has checked transactions of the first chunks (bounded wait).
          const end = Date.now() + 10_000;
          while (policyLookups === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
          lookupsWhenLastAnswered = policyLookups;
        }
        return answers;
      },
    };
    const policies = {
      ...ctxBase.policies,
      chaincodePolicy: (ns: string) => {
        policyLookups++;
        return ctxBase.policies.chaincodePolicy(ns);
      },
    };
    const r = await validateBlock(
      block(
        1,
        txs.map((t) => t.envelope),
      ),
      { ...ctxBase, policies, signatureVerifier: slowLast, stateReader: new MemoryState() },
    );
    expect(chunks).toEqual([180, 180, 30]);
    expect(lookupsWhenLastAnswered).toBeGreaterThan(0);
    expect(
      [...r.codes]
        .map((c, i) => (c === TxValidationCode.VALID ? 'ok' : `${i}:${txValidationCodeName(c)}`))
        .filter((x) => x !== 'ok'),
    ).toEqual(['0:BAD_CREATOR_SIGNATURE', '70:BAD_CREATOR_SIGNATURE', '125:BAD_CREATOR_SIGNATURE']);

    // A verifier failure still fails the block (no transaction gets a code it was not checked for).
    let calls = 0;
    const failing = {
      verifyMany: async (items: Parameters<typeof verifier.verifyMany>[0]) => {
        if (++calls === 2) throw new Error('verifier down');
        return verifier.verifyMany(items);
      },
    };
    await expect(
      validateBlock(
        block(
          1,
          txs.map((t) => t.envelope),
        ),
        { ...ctxBase, signatureVerifier: failing, stateReader: new MemoryState() },
      ),
    ).rejects.toThrow('verifier down');
  }, 60_000);

  it('gives the same answer through a worker pool', async () => {
    const pool = createSignatureVerifier({ poolSize: 2, minWorkerBatch: 1, minChunk: 1 });
    try {
      const txs = await Promise.all([makeTx(), makeTx({ badEndorsementSig: true }), makeTx({ badCreatorSig: true })]);
      const r = await validateBlock(
        block(
          1,
          txs.map((t) => t.envelope),
        ),
        {
          ...ctxBase,
          signatureVerifier: pool,
          stateReader: new MemoryState(),
        },
      );
      expect([...r.codes].map(txValidationCodeName)).toEqual([
        'VALID',
        'ENDORSEMENT_POLICY_FAILURE',
        'BAD_CREATOR_SIGNATURE',
      ]);
      expect(pool.stats().workerVerified).toBeGreaterThan(0);
    } finally {
      await pool.close();
    }
  });
});
