import { createHash } from 'node:crypto';
import { encode as rawCbor } from 'cborg';
import { describe, expect, it } from 'vitest';
import { bytesEqual, concatBytes, encodeValue, fromHex, hashConcat, toHex, utf8 } from '../encoding.js';
import { isLoomError } from '../errors.js';
import {
  buildBlock,
  buildProposal,
  buildTransactionPayload,
  computeDataHash,
  computeProposalHash,
  decodeBlock,
  decodeBlockHeader,
  decodeChaincodeInvocationSpec,
  decodeChaincodeProposalPayload,
  decodeChannelConfig,
  decodeChannelHeader,
  decodeConfigUpdate,
  decodeEndorserTransaction,
  decodeEnvelope,
  decodeHeader,
  decodePayload,
  decodeProposal,
  decodeProposalResponse,
  decodeSeekInfo,
  decodeSerializedIdentity,
  decodeSignatureHeader,
  decodeTxPvtReadWriteSet,
  decodeTxReadWriteSet,
  encodeBlock,
  encodeChannelConfig,
  encodeConfigUpdate,
  encodeConsenterMetadata,
  encodeEnvelope,
  encodeProposalResponse,
  encodeSeekInfo,
  encodeTxPvtReadWriteSet,
  encodeTxReadWriteSet,
  GENESIS_PREVIOUS_HASH,
  type ChannelConfig,
  type TxReadWriteSet,
  merkleAuditPath,
  merkleLeafHash,
  merkleNodeHash,
  merkleRoot,
  verifyMerkleAuditPath,
} from './index.js';

const sha = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());

function expectCode(fn: () => unknown, code: string) {
  try {
    fn();
  } catch (e) {
    expect(isLoomError(e, code), `expected ${code}, got ${(e as Error).message}`).toBe(true);
    return;
  }
  throw new Error(`expected ${code}, nothing thrown`);
}

const creator = { mspId: 'Org1MSP', idBytes: utf8('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n') };

describe('proposal and transaction round-trips', () => {
  const built = buildProposal({
    channelId: 'mychannel',
    chaincodeName: 'basic',
    args: ['CreateAsset', 'a1', 'blue'],
    transient: { secret: utf8('s3cret'), alpha: utf8('1') },
    creator,
    nonce: new Uint8Array(24).fill(7),
    timestamp: 1_700_000_000_000,
  });

  it('decodes every layer back to what was built', () => {
    const p = decodeProposal(built.proposalBytes);
    const h = decodeHeader(p.header);
    const ch = decodeChannelHeader(h.channelHeader);
    expect(ch).toMatchObject({ type: 3, channelId: 'mychannel', txId: built.txId, timestamp: 1_700_000_000_000 });
    const sh = decodeSignatureHeader(h.signatureHeader);
    expect(decodeSerializedIdentity(sh.creator).mspId).toBe('Org1MSP');
    const payload = decodeChaincodeProposalPayload(p.payload);
    expect([...payload.transientMap.keys()]).toEqual(['alpha', 'secret']);
    const spec = decodeChaincodeInvocationSpec(payload.input);
    expect(spec.args.map((a) => new TextDecoder().decode(a))).toEqual(['CreateAsset', 'a1', 'blue']);
  });

  it('txId is sha256(nonce ‖ creator)', () => {
    const h = decodeHeader(decodeProposal(built.proposalBytes).header);
    const sh = decodeSignatureHeader(h.signatureHeader);
    expect(built.txId).toBe(toHex(sha(concatBytes(sh.nonce, sh.creator))));
  });

  it('the transaction carries the proposal header bytes unchanged and no transient data', () => {
    const prp = encodeValue([computeProposalHash(built.headerBytes, built.inputBytes), new Uint8Array([1])]);
    const payloadBytes = buildTransactionPayload(built, prp, [{ endorser: utf8('e'), signature: utf8('s') }]);
    const env = decodeEnvelope(encodeEnvelope({ payload: payloadBytes, signature: utf8('sig') }));
    const payload = decodePayload(env.payload);
    expect(bytesEqual(payload.header, built.headerBytes)).toBe(true);
    const tx = decodeEndorserTransaction(payload.data);
    expect(bytesEqual(tx.input, built.inputBytes)).toBe(true);
    expect(Buffer.from(env.payload).includes(Buffer.from('s3cret'))).toBe(false);
  });

  it('proposal responses round-trip with and without an endorsement', () => {
    for (const endorsement of [null, { endorser: utf8('peer'), signature: utf8('sig') }]) {
      const r = {
        version: 1,
        timestamp: 5,
        response: { status: 200, message: '', payload: utf8('ok') },
        payload: utf8('p'),
        endorsement,
      };
      expect(decodeProposalResponse(encodeProposalResponse(r))).toEqual(r);
    }
  });
});

describe('read-write sets', () => {
  const rwset: TxReadWriteSet = {
    nsRwsets: [
      {
        namespace: 'basic',
        rwset: {
          reads: [
            { key: 'a', version: { blockNum: 3, txNum: 1 } },
            { key: 'b', version: null },
          ],
          rangeQueriesInfo: [
            {
              startKey: 'a',
              endKey: 'z',
              itrExhausted: true,
              reads: [{ key: 'c', version: { blockNum: 1, txNum: 0 } }],
            },
          ],
          writes: [
            { key: 'a', isDelete: false, value: utf8('{"x":1}') },
            { key: 'd', isDelete: true, value: new Uint8Array() },
          ],
          metadataWrites: [{ key: 'a', entries: new Map([['VALIDATION_PARAMETER', utf8('policy')]]) }],
        },
        collectionHashedRwsets: [
          {
            collectionName: 'col',
            hashedRwset: {
              hashedReads: [{ keyHash: sha(utf8('k')), version: null }],
              hashedWrites: [{ keyHash: sha(utf8('k')), isDelete: false, valueHash: sha(utf8('v')), isPurge: false }],
              metadataWrites: [],
            },
            pvtRwsetHash: sha(utf8('pvt')),
          },
        ],
      },
    ],
  };

  it('public rwset round-trips', () => {
    expect(decodeTxReadWriteSet(encodeTxReadWriteSet(rwset))).toEqual(rwset);
  });

  it('private rwset round-trips', () => {
    const pvt = {
      nsPvtRwsets: [{ namespace: 'basic', collectionPvtRwsets: [{ collectionName: 'col', rwset: utf8('x') }] }],
    };
    expect(decodeTxPvtReadWriteSet(encodeTxPvtReadWriteSet(pvt))).toEqual(pvt);
  });

  it('equal rwsets encode to equal bytes (endorsements compare bytes)', () => {
    expect(bytesEqual(encodeTxReadWriteSet(rwset), encodeTxReadWriteSet(structuredClone(rwset)))).toBe(true);
  });
});

describe('strict decoding', () => {
  it('rejects a non-minimal integer encoding of the same value', () => {
    // [mspId, idBytes] with the array header written as a 1-byte-length form (0x98 0x02) instead of 0x82.
    const canonical = encodeValue(['Org1MSP', new Uint8Array([1])]);
    const loose = concatBytes(Uint8Array.of(0x98, 0x02), canonical.subarray(1));
    expectCode(() => decodeSerializedIdentity(loose), 'ENCODING_MALFORMED');
  });

  it('rejects a float where an integer belongs', () => {
    const bytes = rawCbor([1.5, 2]);
    expect(() => decodeBlockHeader(bytes)).toThrow();
    const asFloat = concatBytes(
      Uint8Array.of(0x83),
      Uint8Array.of(0xf9, 0x3c, 0x00),
      encodeValue(new Uint8Array(32)).subarray(0),
      encodeValue(new Uint8Array(32)),
    );
    expectCode(() => decodeBlockHeader(asFloat), 'ENCODING_NON_CANONICAL');
  });

  it('rejects truncated bytes, trailing bytes, wrong shapes and unknown header types', () => {
    const env = encodeEnvelope({ payload: utf8('p'), signature: utf8('s') });
    expectCode(() => decodeEnvelope(env.subarray(0, env.length - 1)), 'ENCODING_MALFORMED');
    expectCode(() => decodeEnvelope(concatBytes(env, Uint8Array.of(0))), 'ENCODING_MALFORMED');
    expectCode(() => decodeEnvelope(encodeValue([utf8('p')])), 'ENCODING_WRONG_SHAPE');
    expectCode(() => decodeEnvelope(encodeValue(['p', utf8('s')])), 'ENCODING_WRONG_SHAPE');
    expectCode(() => decodeChannelHeader(encodeValue([99, 1, 'c', '', 0, new Uint8Array()])), 'ENCODING_WRONG_SHAPE');
  });

  it('rejects transient maps whose keys are not strictly ascending', () => {
    const bad = encodeValue([
      utf8('in'),
      [
        ['b', utf8('1')],
        ['a', utf8('2')],
      ],
    ]);
    expectCode(() => decodeChaincodeProposalPayload(bad), 'ENCODING_WRONG_SHAPE');
    const dup = encodeValue([
      utf8('in'),
      [
        ['a', utf8('1')],
        ['a', utf8('2')],
      ],
    ]);
    expectCode(() => decodeChaincodeProposalPayload(dup), 'ENCODING_WRONG_SHAPE');
  });

  it('seek info round-trips and rejects unknown positions', () => {
    const s = {
      start: { kind: 'specified' as const, number: 5 },
      stop: { kind: 'newest' as const },
      behavior: 'BLOCK_UNTIL_READY' as const,
    };
    expect(decodeSeekInfo(encodeSeekInfo(s))).toEqual(s);
    expectCode(
      () => decodeSeekInfo(encodeValue([['sideways'], ['newest'], 'BLOCK_UNTIL_READY'])),
      'ENCODING_WRONG_SHAPE',
    );
  });
});

describe('blocks', () => {
  it('a block round-trips and its dataHash is the Merkle root of its envelopes', () => {
    const data = [utf8('tx0'), utf8('tx1'), utf8('tx2')];
    const b = buildBlock(1, GENESIS_PREVIOUS_HASH, data, encodeConsenterMetadata({ lastConfig: 0, raftIndex: 9 }), sha);
    const back = decodeBlock(encodeBlock(b));
    expect(back).toEqual(b);
    const header = decodeBlockHeader(back.header);
    expect(header.number).toBe(1);
    expect(toHex(header.dataHash)).toBe(toHex(computeDataHash(data, sha)));
  });
});

describe('Merkle trees', () => {
  // RFC 6962 §2.1 recursive definition, as the reference.
  const mth = (d: Uint8Array[]): Uint8Array => {
    if (d.length === 0) return sha(new Uint8Array());
    if (d.length === 1) return merkleLeafHash(sha, d[0]!);
    let k = 1;
    while (k * 2 < d.length) k *= 2;
    return merkleNodeHash(sha, mth(d.slice(0, k)), mth(d.slice(k)));
  };

  it('matches the RFC 6962 definition for sizes 0..40, and every audit path verifies', () => {
    for (let n = 0; n <= 40; n++) {
      const data = Array.from({ length: n }, (_, i) => utf8(`leaf-${i}`));
      const root = merkleRoot(sha, data);
      expect(toHex(root)).toBe(toHex(mth(data)));
      const leaves = data.map((d) => merkleLeafHash(sha, d));
      for (let i = 0; i < n; i++) {
        const path = merkleAuditPath(sha, leaves, i);
        expect(verifyMerkleAuditPath(sha, leaves[i]!, i, n, path, root)).toBe(true);
        // Another leaf, another index or another root must not verify.
        expect(verifyMerkleAuditPath(sha, merkleLeafHash(sha, utf8('evil')), i, n, path, root)).toBe(false);
        if (n > 1) expect(verifyMerkleAuditPath(sha, leaves[i]!, (i + 1) % n, n, path, root)).toBe(false);
        expect(verifyMerkleAuditPath(sha, leaves[i]!, i, n, path, sha(root))).toBe(false);
      }
    }
  });
});

describe('channel config', () => {
  const policy = (rule: string) => ({ rule, version: 0, modPolicy: 'Admins' });
  const org = (mspId: string) => ({
    mspId,
    msp: {
      rootCerts: ['PEM'],
      intermediateCerts: [],
      admins: [],
      crls: [],
      tlsRootCerts: ['PEM'],
      tlsIntermediateCerts: [],
      nodeOUs: true,
    },
    anchorPeers: [{ host: '127.0.0.1', port: 7051 }],
    policies: { Readers: policy(`OR('${mspId}.member')`), Admins: policy(`OR('${mspId}.admin')`) },
    version: 0,
    modPolicy: 'Admins',
  });
  const config: ChannelConfig = {
    channelId: 'mychannel',
    sequence: 0,
    orgs: { Org2MSP: org('Org2MSP'), Org1MSP: org('Org1MSP') },
    policies: { Readers: policy('ANY Readers'), Admins: policy('MAJORITY Admins') },
    orderer: {
      consenters: [
        {
          id: 'orderer0',
          mspId: 'OrdererMSP',
          host: '127.0.0.1',
          port: 7050,
          raftPort: 7060,
          identityCert: 'PEM',
          tlsCert: 'PEM',
        },
      ],
      batch: { batchTimeoutMs: 250, maxMessageCount: 500, absoluteMaxBytes: 10485760, preferredMaxBytes: 2097152 },
      orgs: { OrdererMSP: org('OrdererMSP') },
      policies: { Admins: policy('MAJORITY Admins') },
      version: 0,
      modPolicy: 'Admins',
    },
    capabilities: ['V1_0'],
    version: 0,
    modPolicy: 'Admins',
  };

  it('round-trips, and key order in the input does not change the bytes', () => {
    const bytes = encodeChannelConfig(config);
    expect(decodeChannelConfig(bytes)).toEqual(config);
    const reordered = { ...config, orgs: { Org1MSP: config.orgs.Org1MSP!, Org2MSP: config.orgs.Org2MSP! } };
    expect(toHex(encodeChannelConfig(reordered))).toBe(toHex(bytes));
    const u = { channelId: 'mychannel', baseSequence: 0, config: { ...config, sequence: 1 } };
    expect(decodeConfigUpdate(encodeConfigUpdate(u))).toEqual(u);
  });

  it('names the bad path', () => {
    const bad = { ...config, orderer: { ...config.orderer, batch: { ...config.orderer.batch, maxMessageCount: -1 } } };
    expect(() => decodeChannelConfig(encodeValue(bad))).toThrow(/orderer\.batch\.maxMessageCount/);
    expect(() => encodeChannelConfig({ ...config, channelId: 'My Channel' })).toThrow(/channelId/);
  });
});

it('hex helpers round-trip and reject junk', () => {
  expect(toHex(fromHex('00ff10'))).toBe('00ff10');
  expectCode(() => fromHex('zz'), 'ENCODING_MALFORMED');
});

describe('hashConcat', () => {
  const sha = (d: Uint8Array) => new Uint8Array(createHash('sha256').update(d).digest());
  it('hashes the concatenation, small or beyond the reused buffer, and never hands back that buffer', () => {
    for (const sizes of [[0], [3, 0, 5], [40_000, 40_000], [200_000, 1]]) {
      const parts = sizes.map((n, i) => new Uint8Array(n).fill(i + 1));
      expect(toHex(hashConcat(sha, ...parts))).toBe(toHex(sha(concatBytes(...parts))));
    }
    // A hash returning (part of) its input: the answer must survive the next call.
    const first = hashConcat((d) => d.subarray(0, 4), utf8('abcd'));
    hashConcat((d) => d.subarray(0, 4), utf8('wxyz'));
    expect(new TextDecoder().decode(first)).toBe('abcd');
  });
});
