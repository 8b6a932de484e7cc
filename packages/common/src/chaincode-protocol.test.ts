import { describe, expect, it } from 'vitest';
import {
  CHAINCODE_MESSAGE_TYPES,
  type ChaincodeMessage,
  FrameDecoder,
  decodeChaincodeMessage,
  encodeChaincodeFrame,
  encodeChaincodeMessage,
  encodeFrame,
  isChaincodeRequest,
} from './chaincode-protocol.js';
import { encodeValue, utf8 } from './encoding.js';
import { isLoomError } from './errors.js';

const b = (s: string) => utf8(s);
const base = { txId: 'tx1', channelId: 'ch' };

/** One message of every type, with every optional branch exercised somewhere. */
const samples: ChaincodeMessage[] = [
  { type: 'REGISTER', txId: '', channelId: '', payload: { chaincodeId: 'basic:1.0' } },
  { type: 'REGISTERED', txId: '', channelId: '', payload: {} },
  {
    type: 'TRANSACTION',
    ...base,
    payload: {
      args: [b('fn'), b('a')],
      transientMap: new Map([
        ['k2', b('v2')],
        ['k1', b('v1')],
      ]),
      signedProposal: b('sp'),
      creator: { mspId: 'Org1MSP', idBytes: b('cert') },
      txTimestamp: { seconds: 1_700_000_000, nanos: 5 },
    },
  },
  {
    type: 'INIT',
    ...base,
    payload: {
      args: [],
      transientMap: new Map(),
      signedProposal: new Uint8Array(0),
      creator: { mspId: 'Org1MSP', idBytes: b('cert') },
      txTimestamp: { seconds: 0, nanos: 0 },
    },
  },
  {
    type: 'COMPLETED',
    ...base,
    payload: {
      response: { status: 200, message: '', payload: b('ok') },
      results: new Uint8Array(0),
      event: { eventName: 'E', payload: b('{}') },
    },
  },
  {
    type: 'COMPLETED',
    ...base,
    payload: { response: { status: 500, message: 'bad', payload: b('') }, results: b(''), event: null },
  },
  { type: 'ERROR', ...base, payload: { message: 'boom' } },
  { type: 'GET_STATE', ...base, payload: { collection: '', key: 'a' } },
  { type: 'PUT_STATE', ...base, payload: { collection: 'c', key: 'a', value: b('v') } },
  { type: 'DEL_STATE', ...base, payload: { collection: '', key: 'a' } },
  { type: 'GET_STATE_METADATA', ...base, payload: { collection: '', key: 'a' } },
  {
    type: 'PUT_STATE_METADATA',
    ...base,
    payload: { collection: '', key: 'a', metakey: 'VALIDATION_PARAMETER', value: b('p') },
  },
  {
    type: 'GET_STATE_BY_RANGE',
    ...base,
    payload: { collection: '', startKey: '\u0001', endKey: '', pagination: { pageSize: 10, bookmark: 'x' } },
  },
  { type: 'GET_STATE_BY_RANGE', ...base, payload: { collection: 'c', startKey: 'a', endKey: 'z', pagination: null } },
  { type: 'QUERY_STATE_NEXT', ...base, payload: { iteratorId: 'it1' } },
  { type: 'QUERY_STATE_CLOSE', ...base, payload: { iteratorId: 'it1' } },
  { type: 'GET_QUERY_RESULT', ...base, payload: { collection: '', query: '{"selector":{}}', pagination: null } },
  { type: 'GET_HISTORY_FOR_KEY', ...base, payload: { key: 'a' } },
  { type: 'GET_PRIVATE_DATA_HASH', ...base, payload: { collection: 'c', key: 'a' } },
  { type: 'PURGE_PRIVATE_DATA', ...base, payload: { collection: 'c', key: 'a' } },
  { type: 'INVOKE_CHAINCODE', ...base, payload: { chaincodeName: 'cc/ch2', args: [b('f')] } },
  { type: 'RESPONSE', ...base, payload: { kind: 'empty' } },
  { type: 'RESPONSE', ...base, payload: { kind: 'value', value: b('v') } },
  { type: 'RESPONSE', ...base, payload: { kind: 'metadata', entries: new Map([['VALIDATION_PARAMETER', b('p')]]) } },
  {
    type: 'RESPONSE',
    ...base,
    payload: {
      kind: 'query',
      iteratorId: 'it1',
      hasMore: true,
      results: [
        { kind: 'kv', key: 'a', value: b('1') },
        { kind: 'history', txId: 't', timestamp: { seconds: 1, nanos: 2 }, isDelete: true, value: b('') },
      ],
      metadata: { fetchedRecordsCount: 2, bookmark: 'b' },
    },
  },
  {
    type: 'RESPONSE',
    ...base,
    payload: { kind: 'chaincode', response: { status: 200, message: '', payload: b('x') } },
  },
  { type: 'KEEPALIVE', txId: '', channelId: '', payload: {} },
];

describe('chaincode messages', () => {
  it('every message type round-trips', () => {
    expect(new Set(samples.map((m) => m.type))).toEqual(new Set(CHAINCODE_MESSAGE_TYPES));
    for (const m of samples) {
      const back = decodeChaincodeMessage(encodeChaincodeMessage(m));
      expect(back).toEqual(m);
      expect(encodeChaincodeMessage(back)).toEqual(encodeChaincodeMessage(m));
    }
  });

  it('classifies requests', () => {
    expect(samples.filter(isChaincodeRequest).map((m) => m.type)).toContain('GET_STATE');
    expect(isChaincodeRequest(samples[0]!)).toBe(false);
  });

  it('rejects unknown types and wrong payload shapes with encoding errors', () => {
    const bad = [
      encodeValue(['NOPE', '', '', []]),
      encodeValue(['GET_STATE', 't', 'c', ['only-key']]),
      encodeValue(['RESPONSE', 't', 'c', ['weird']]),
      encodeValue(['GET_STATE', 't', 'c']),
      encodeValue(['TRANSACTION', 't', 'c', [[], [], b(''), ['m', b('')], [1, 1_000_000_000]]]),
    ];
    for (const x of bad) {
      expect(() => decodeChaincodeMessage(x)).toThrow();
      try {
        decodeChaincodeMessage(x);
      } catch (e) {
        expect(isLoomError(e, 'ENCODING_WRONG_SHAPE')).toBe(true);
      }
    }
  });
});

describe('FrameDecoder', () => {
  const frames = samples.map((m) => encodeChaincodeFrame(m));
  const stream = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  frames.reduce((o, f) => {
    stream.set(f, o);
    return o + f.length;
  }, 0);

  it('decodes several frames delivered in one chunk', () => {
    const d = new FrameDecoder();
    expect(d.pushMessages(stream)).toEqual(samples);
    expect(d.bufferedBytes).toBe(0);
    d.end();
  });

  it('reassembles frames split at every byte', () => {
    const d = new FrameDecoder();
    const out: ChaincodeMessage[] = [];
    for (let i = 0; i < stream.length; i++) out.push(...d.pushMessages(stream.subarray(i, i + 1)));
    expect(out).toEqual(samples);
  });

  it('reassembles frames from chunks that straddle frame boundaries', () => {
    for (const size of [3, 7, 64, 1000]) {
      const d = new FrameDecoder();
      const out: ChaincodeMessage[] = [];
      for (let i = 0; i < stream.length; i += size) out.push(...d.pushMessages(stream.subarray(i, i + size)));
      expect(out).toEqual(samples);
    }
  });

  it('handles empty frames and empty chunks', () => {
    const d = new FrameDecoder();
    expect(d.push(new Uint8Array(0))).toEqual([]);
    expect(d.push(encodeFrame(new Uint8Array(0)))).toEqual([new Uint8Array(0)]);
  });

  it('fails on a frame larger than the limit, as soon as the header arrives, and stays failed', () => {
    const d = new FrameDecoder(16);
    const header = new Uint8Array([0, 0, 0, 17]);
    let err: unknown;
    try {
      d.push(header);
    } catch (e) {
      err = e;
    }
    expect(isLoomError(err, 'CHAINCODE_FRAME_TOO_LARGE')).toBe(true);
    expect(() => d.push(new Uint8Array(1))).toThrow(/exceeds the limit/);
    expect(() => encodeFrame(new Uint8Array(17), 16)).toThrow(/exceeds the limit/);
    expect(new FrameDecoder(16).push(encodeFrame(new Uint8Array(16), 16))).toHaveLength(1);
  });

  it('reports a stream that ends inside a frame', () => {
    const d = new FrameDecoder();
    d.push(frames[0]!.subarray(0, 5));
    let err: unknown;
    try {
      d.end();
    } catch (e) {
      err = e;
    }
    expect(isLoomError(err, 'CHAINCODE_FRAME_TRUNCATED')).toBe(true);
  });
});
