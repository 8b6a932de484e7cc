/**
 * Compatibility tests of the ChaincodeStub against fabric-shim's documented API: every stub method's
 * result shape, and the wire messages it sends to a (fake) peer over a real loopback TCP socket.
 */
import { createHash } from 'node:crypto';
import {
  type ChaincodeStub,
  ChaincodeServer,
  KeyEndorsementPolicy,
  type KV,
  type KeyModification,
  Shim,
} from '@loom/chaincode-sdk';
import {
  encodeChaincodeInvocationSpec,
  encodeChaincodeProposalPayload,
  encodeChannelHeader,
  encodeHeader,
  encodeProposal,
  encodeSignatureHeader,
  encodeSignedProposal,
  encodeSerializedIdentity,
} from '@loom/common/protocol/messages';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakePeer } from './fake-peer.js';
import { type Harness, ScriptedChaincode, startHarness } from './harness.js';

const enc = (s: string) => new TextEncoder().encode(s);

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  for (const k of ['a', 'b', 'c', 'd', 'e']) h.peer.seed(k, `value-${k}`);
});
afterAll(async () => {
  await h.close();
});

const requests = (txId: string) => h.peer.messagesFor(txId).filter((m) => m.type !== 'COMPLETED' && m.type !== 'ERROR');

describe('registration and transaction inputs', () => {
  it('registers with the chaincode id', () => {
    expect(h.peer.registeredAs).toBe('basic:1.0');
    expect(h.peer.received[0]?.type).toBe('REGISTER');
  });

  it('exposes args, ids, creator, transient data and timestamps in fabric-shim shapes', async () => {
    process.env['CORE_PEER_LOCALMSPID'] = 'PeerOrgMSP';
    const { result, txId } = await h.run(
      async (stub) => ({
        args: stub.getArgs(),
        stringArgs: stub.getStringArgs(),
        bufferArgs: stub.getBufferArgs(),
        fp: stub.getFunctionAndParameters(),
        txId: stub.getTxID(),
        channel: stub.getChannelID(),
        creator: stub.getCreator(),
        mspId: stub.getMspID(),
        transient: stub.getTransient(),
        ts: stub.getTxTimestamp(),
        date: stub.getDateTimestamp(),
        sp: stub.getSignedProposal(),
        binding: stub.getBinding(),
      }),
      {
        args: ['transfer', 'asset1', 'bob'],
        channelId: 'ch1',
        transientMap: new Map([['secret', enc('s3cr3t')]]),
        creator: { mspId: 'Org1MSP', idBytes: enc('-----BEGIN CERTIFICATE-----') },
        txTimestamp: { seconds: 1_700_000_123, nanos: 456_000_000 },
      },
    );
    expect(result.args).toEqual(['transfer', 'asset1', 'bob']);
    expect(result.stringArgs).toEqual(['transfer', 'asset1', 'bob']);
    expect(Buffer.isBuffer(result.bufferArgs[0])).toBe(true);
    expect(result.fp).toEqual({ fcn: 'transfer', params: ['asset1', 'bob'] });
    expect(result.txId).toBe(txId);
    expect(result.channel).toBe('ch1');
    expect(result.creator.mspid).toBe('Org1MSP');
    expect(Buffer.isBuffer(result.creator.idBytes)).toBe(true);
    expect(result.creator.idBytes.toString('utf8')).toBe('-----BEGIN CERTIFICATE-----');
    expect(result.mspId).toBe('PeerOrgMSP');
    expect(result.transient).toBeInstanceOf(Map);
    expect(result.transient.get('secret')?.toString()).toBe('s3cr3t');
    expect(result.ts).toEqual({ seconds: 1_700_000_123, nanos: 456_000_000 });
    expect(result.date.getTime()).toBe(1_700_000_123_456);
    expect(result.sp).toBeNull();
    expect(result.binding).toBe('');
  });

  it('decodes the signed proposal and derives the binding from nonce and creator', async () => {
    const creator = encodeSerializedIdentity({ mspId: 'Org1MSP', idBytes: enc('cert') });
    const nonce = new Uint8Array(24).fill(7);
    const input = encodeChaincodeInvocationSpec({ chaincodeName: 'basic', args: [enc('fn')], isInit: false });
    const header = encodeHeader({
      channelHeader: encodeChannelHeader({
        type: 3,
        version: 0,
        channelId: 'mychannel',
        txId: 'abc',
        timestamp: 1_700_000_000_000,
        extension: enc('basic'),
      }),
      signatureHeader: encodeSignatureHeader({ creator, nonce }),
    });
    const proposalBytes = encodeProposal({
      header,
      payload: encodeChaincodeProposalPayload({ input, transientMap: new Map() }),
    });
    const signedProposal = encodeSignedProposal({ proposalBytes, signature: enc('sig') });
    const { result } = await h.run(async (stub) => ({ sp: stub.getSignedProposal(), binding: stub.getBinding() }), {
      signedProposal,
    });
    expect(result.sp?.signature.toString()).toBe('sig');
    expect(result.sp?.proposal.header.channelHeader.channelId).toBe('mychannel');
    expect(result.sp?.proposal.header.signatureHeader.nonce).toEqual(nonce);
    expect(result.binding).toBe(createHash('sha256').update(nonce).update(creator).digest('hex'));
  });

  it('reports the TRANSACTION result as COMPLETED with the response and event', async () => {
    const { outcome } = await h.run(async (stub) => {
      stub.setEvent('AssetCreated', Buffer.from('{"ID":"a"}'));
    });
    expect(outcome.type).toBe('COMPLETED');
    if (outcome.type !== 'COMPLETED') return;
    expect(outcome.payload.response.status).toBe(200);
    expect(Buffer.from(outcome.payload.response.payload).toString()).toBe('ok');
    expect(outcome.payload.event?.eventName).toBe('AssetCreated');
    expect(Buffer.from(outcome.payload.event!.payload).toString()).toBe('{"ID":"a"}');
  });

  it('rejects an empty event name', async () => {
    await expect(h.run(async (stub) => stub.setEvent('', 'x'))).rejects.toThrow(
      /Event name must be a non-empty string/,
    );
  });

  it('handles INIT like TRANSACTION', async () => {
    const txId = 'init-1';
    h.chaincode.scripts.set(txId, async (stub) => stub.getFunctionAndParameters());
    const outcome = await h.peer.invoke(['init', 'x'], { txId, init: true });
    expect(outcome.type).toBe('COMPLETED');
    expect(h.peer.messagesFor(txId)[0]?.type).toBe('COMPLETED');
    expect(h.chaincode.results.get(txId)).toEqual({ fcn: 'init', params: ['x'] });
  });
});

describe('public state', () => {
  it('getState returns a Buffer (empty when missing) and sends GET_STATE', async () => {
    const { result, txId } = await h.run(async (stub) => [await stub.getState('a'), await stub.getState('missing')]);
    expect(Buffer.isBuffer(result[0])).toBe(true);
    expect(result[0]!.toString()).toBe('value-a');
    expect(result[1]!.length).toBe(0);
    expect(requests(txId).map((m) => [m.type, m.payload])).toEqual([
      ['GET_STATE', { collection: '', key: 'a' }],
      ['GET_STATE', { collection: '', key: 'missing' }],
    ]);
  });

  it('putState and deleteState send PUT_STATE / DEL_STATE; the peer commits them', async () => {
    const { txId } = await h.run(async (stub) => {
      await stub.putState('k1', Buffer.from('v1'));
      await stub.putState('k2', 'v2');
      await stub.deleteState('e');
    });
    const msgs = requests(txId);
    expect(msgs.map((m) => m.type)).toEqual(['PUT_STATE', 'PUT_STATE', 'DEL_STATE']);
    expect(msgs[0]?.payload).toEqual({ collection: '', key: 'k1', value: enc('v1') });
    expect(h.peer.get('k1')).toBe('v1');
    expect(h.peer.get('k2')).toBe('v2');
    expect(h.peer.get('e')).toBeUndefined();
    h.peer.seed('e', 'value-e');
  });

  it('rejects an empty key before sending anything', async () => {
    await expect(h.run(async (stub) => stub.putState('', 'x'))).rejects.toThrow(/key must be a non-empty string/);
  });

  it('surfaces a peer ERROR as a rejected promise the chaincode can catch', async () => {
    const { result } = await h.run(async (stub) => {
      const err = await stub.getState('boom').then(
        () => null,
        (e: Error) => e.message,
      );
      return { err, after: (await stub.getState('a')).toString() };
    });
    expect(result).toEqual({ err: 'simulated peer failure', after: 'value-a' });
  });

  it('serializes concurrent calls of one transaction and returns each its own answer', async () => {
    const { result } = await h.run(async (stub) =>
      (await Promise.all(['a', 'b', 'c', 'd'].map((k) => stub.getState(k)))).map(String),
    );
    expect(result).toEqual(['value-a', 'value-b', 'value-c', 'value-d']);
  });

  it('runs transactions concurrently, multiplexed by txId', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const order: string[] = [];
    const slow = h.run(async (stub) => {
      await stub.getState('a');
      await gate;
      order.push('slow');
      return (await stub.getState('b')).toString();
    });
    const fast = await h.run(async (stub) => {
      order.push('fast');
      return (await stub.getState('c')).toString();
    });
    release();
    expect(fast.result).toBe('value-c');
    expect((await slow).result).toBe('value-b');
    expect(order).toEqual(['fast', 'slow']);
  });

  it('state-based endorsement: set/getStateValidationParameter with KeyEndorsementPolicy', async () => {
    const { result, txId } = await h.run(async (stub) => {
      const ep = new KeyEndorsementPolicy();
      ep.addOrgs('PEER', 'Org2MSP', 'Org1MSP');
      ep.addOrgs('MEMBER', 'Org3MSP');
      ep.delOrgs('Org3MSP');
      await stub.setStateValidationParameter('a', ep.getPolicy());
      return { listed: ep.listOrgs(), policy: Buffer.from(ep.getPolicy()).toString() };
    });
    expect(result.listed).toEqual(['Org2MSP', 'Org1MSP']);
    expect(result.policy).toBe("AND('Org1MSP.peer', 'Org2MSP.peer')");
    expect(requests(txId)[0]).toMatchObject({
      type: 'PUT_STATE_METADATA',
      payload: { collection: '', key: 'a', metakey: 'VALIDATION_PARAMETER' },
    });
    const read = await h.run(async (stub) => {
      const bytes = await stub.getStateValidationParameter('a');
      return {
        orgs: new KeyEndorsementPolicy(bytes).listOrgs(),
        none: (await stub.getStateValidationParameter('b')).length,
      };
    });
    expect(read.result).toEqual({ orgs: ['Org1MSP', 'Org2MSP'], none: 0 });
    expect(() => new KeyEndorsementPolicy().addOrgs('ADMIN', 'X')).toThrow(/role type ADMIN does not exist/);
  });
});

describe('iterators', () => {
  it('getStateByRange works with for-await (paging with QUERY_STATE_NEXT, closing at the end)', async () => {
    h.peer.seed('\u0000color\u0000blue\u0000', 'composite');
    const { result, txId } = await h.run(async (stub) => {
      const out: Array<{ key: string; value: string }> = [];
      for await (const kv of stub.getStateByRange('', '')) out.push({ key: kv.key, value: kv.value.toString() });
      return out;
    });
    expect(result.map((r) => r.key)).toEqual(['a', 'b', 'c', 'd', 'e', 'k1', 'k2']);
    expect(result[0]).toEqual({ key: 'a', value: 'value-a' });
    const msgs = requests(txId);
    expect(msgs[0]).toMatchObject({
      type: 'GET_STATE_BY_RANGE',
      payload: { collection: '', startKey: '\u0001', endKey: '', pagination: null },
    });
    expect(msgs.filter((m) => m.type === 'QUERY_STATE_NEXT')).toHaveLength(3);
    expect(msgs.at(-1)?.type).toBe('QUERY_STATE_CLOSE');
  });

  it('getStateByRange works with await + next()/close() as fabric-shim StateQueryIterator', async () => {
    const { result, txId } = await h.run(async (stub) => {
      const it = await stub.getStateByRange('b', 'e');
      const seen: KV[] = [];
      let r = await it.next();
      while (!r.done) {
        seen.push(r.value);
        r = await it.next();
      }
      await it.close();
      return { keys: seen.map((kv) => kv.key), isBuffer: Buffer.isBuffer(seen[0]?.value), last: r };
    });
    expect(result.keys).toEqual(['b', 'c', 'd']);
    expect(result.isBuffer).toBe(true);
    expect(result.last).toEqual({ value: undefined, done: true });
    expect(requests(txId).at(-1)?.type).toBe('QUERY_STATE_CLOSE');
  });

  it('closes the peer iterator when for-await breaks early', async () => {
    const { result, txId } = await h.run(async (stub) => {
      for await (const kv of stub.getStateByRange('a', '')) return kv.key;
      return null;
    });
    expect(result).toBe('a');
    expect(requests(txId).map((m) => m.type)).toEqual(['GET_STATE_BY_RANGE', 'QUERY_STATE_CLOSE']);
  });

  it('rejects composite keys as range bounds', async () => {
    await expect(h.run(async (stub) => stub.getStateByRange('\u0000x', ''))).rejects.toThrow(/null character/);
  });

  it('getStateByRangeWithPagination returns {iterator, metadata: {fetchedRecordsCount, bookmark}}', async () => {
    const { result, txId } = await h.run(async (stub) => {
      const page1 = await stub.getStateByRangeWithPagination('', '', 3);
      const keys1: string[] = [];
      for await (const kv of page1.iterator) keys1.push(kv.key);
      const page2 = await stub.getStateByRangeWithPagination('', '', 3, page1.metadata.bookmark);
      const keys2: string[] = [];
      for await (const kv of page2.iterator) keys2.push(kv.key);
      return { keys1, m1: page1.metadata, keys2, m2: page2.metadata };
    });
    expect(result.keys1).toEqual(['a', 'b', 'c']);
    expect(result.m1).toEqual({ fetchedRecordsCount: 3, bookmark: 'd' });
    expect(result.keys2).toEqual(['d', 'e', 'k1']);
    expect(result.m2).toEqual({ fetchedRecordsCount: 3, bookmark: 'k2' });
    expect(requests(txId)[0]?.payload).toEqual({
      collection: '',
      startKey: '\u0001',
      endKey: '',
      pagination: { pageSize: 3, bookmark: '' },
    });
  });

  it('getHistoryForKey yields {txId, timestamp, isDelete, value}', async () => {
    await h.run(async (stub) => stub.putState('hist', 'v1'), { txId: 'h-1' });
    await h.run(async (stub) => stub.putState('hist', 'v2'), { txId: 'h-2' });
    await h.run(async (stub) => stub.deleteState('hist'), { txId: 'h-3' });
    const { result, txId } = await h.run(async (stub) => {
      const out: KeyModification[] = [];
      for await (const m of stub.getHistoryForKey('hist')) out.push(m);
      const it = await stub.getHistoryForKey('hist');
      const first = await it.next();
      await it.close();
      return { out, first };
    });
    expect(result.out.map((m) => [m.txId, m.isDelete, m.value.toString()])).toEqual([
      ['h-1', false, 'v1'],
      ['h-2', false, 'v2'],
      ['h-3', true, ''],
    ]);
    expect(result.out[0]?.timestamp).toEqual({ seconds: 1_700_000_000, nanos: 0 });
    expect(result.first.value?.txId).toBe('h-1');
    expect(requests(txId)[0]).toMatchObject({ type: 'GET_HISTORY_FOR_KEY', payload: { key: 'hist' } });
  });

  it('getQueryResult and getQueryResultWithPagination send the query string', async () => {
    h.peer.seed('asset1', JSON.stringify({ docType: 'asset', Owner: 'Tom' }));
    h.peer.seed('asset2', JSON.stringify({ docType: 'asset', Owner: 'Ann' }));
    h.peer.seed('asset3', JSON.stringify({ docType: 'asset', Owner: 'Tom' }));
    const query = JSON.stringify({ selector: { docType: 'asset', Owner: 'Tom' } });
    const { result, txId } = await h.run(async (stub) => {
      const all: string[] = [];
      for await (const kv of stub.getQueryResult(query)) all.push(kv.key);
      const page = await stub.getQueryResultWithPagination(query, 1);
      const first: string[] = [];
      for await (const kv of page.iterator) first.push(kv.key);
      return { all, first, metadata: page.metadata };
    });
    expect(result.all).toEqual(['asset1', 'asset3']);
    expect(result.first).toEqual(['asset1']);
    expect(result.metadata).toEqual({ fetchedRecordsCount: 1, bookmark: 'asset3' });
    expect(requests(txId)[0]).toMatchObject({
      type: 'GET_QUERY_RESULT',
      payload: { collection: '', query, pagination: null },
    });
  });
});

describe('composite keys', () => {
  it("createCompositeKey uses Fabric's exact format and splitCompositeKey inverts it", async () => {
    const { result } = await h.run(async (stub) => {
      const key = stub.createCompositeKey('color~name', ['blue', 'asset1']);
      return {
        key,
        split: stub.splitCompositeKey(key),
        noAttrs: stub.createCompositeKey('owner', []),
        notComposite: stub.splitCompositeKey('plain'),
      };
    });
    expect(result.key).toBe('\u0000color~name\u0000blue\u0000asset1\u0000');
    expect(result.split).toEqual({ objectType: 'color~name', attributes: ['blue', 'asset1'] });
    expect(result.noAttrs).toBe('\u0000owner\u0000');
    expect(result.notComposite).toEqual({ objectType: null, attributes: [] });
  });

  it('rejects attributes containing U+0000 or U+10FFFF', async () => {
    await expect(h.run(async (stub) => stub.createCompositeKey('t', ['a\u0000b']))).rejects.toThrow(/reserved/);
    await expect(h.run(async (stub) => stub.createCompositeKey('t', ['\u{10FFFF}']))).rejects.toThrow(/reserved/);
  });

  it('getStateByPartialCompositeKey ranges over the prefix', async () => {
    const { txId: seedTx } = await h.run(async (stub) => {
      for (const [color, id] of [
        ['blue', 'asset1'],
        ['blue', 'asset2'],
        ['red', 'asset3'],
      ]) {
        await stub.putState(stub.createCompositeKey('color~name', [color!, id!]), Buffer.from([0]));
      }
    });
    expect(requests(seedTx)).toHaveLength(3);
    const { result, txId } = await h.run(async (stub) => {
      const blue: string[][] = [];
      for await (const kv of stub.getStateByPartialCompositeKey('color~name', ['blue'])) {
        blue.push(stub.splitCompositeKey(kv.key).attributes);
      }
      const page = await stub.getStateByPartialCompositeKeyWithPagination('color~name', [], 2);
      const paged: string[] = [];
      for await (const kv of page.iterator) paged.push(stub.splitCompositeKey(kv.key).attributes.join('/'));
      return { blue, paged, metadata: page.metadata };
    });
    expect(result.blue).toEqual([
      ['blue', 'asset1'],
      ['blue', 'asset2'],
    ]);
    expect(result.paged).toEqual(['blue/asset1', 'blue/asset2']);
    expect(result.metadata.fetchedRecordsCount).toBe(2);
    expect(result.metadata.bookmark).toBe('\u0000color~name\u0000red\u0000asset3\u0000');
    expect(requests(txId)[0]?.payload).toEqual({
      collection: '',
      startKey: '\u0000color~name\u0000blue\u0000',
      endKey: '\u0000color~name\u0000blue\u0000\u{10FFFF}',
      pagination: null,
    });
  });
});

describe('private data', () => {
  it('every private data method sends its collection', async () => {
    const { txId } = await h.run(async (stub) => {
      await stub.putPrivateData('col1', 'p1', Buffer.from('secret-1'));
      await stub.putPrivateData('col1', 'p2', 'secret-2');
      await stub.putPrivateData('col1', stub.createCompositeKey('t', ['x']), 'c');
    });
    expect(requests(txId).map((m) => m.payload)).toEqual([
      { collection: 'col1', key: 'p1', value: enc('secret-1') },
      { collection: 'col1', key: 'p2', value: enc('secret-2') },
      { collection: 'col1', key: '\u0000t\u0000x\u0000', value: enc('c') },
    ]);
    const { result, txId: tx2 } = await h.run(async (stub) => {
      const value = (await stub.getPrivateData('col1', 'p1')).toString();
      const hash = await stub.getPrivateDataHash('col1', 'p1');
      const range: string[] = [];
      for await (const kv of stub.getPrivateDataByRange('col1', '', '')) range.push(kv.key);
      const composite: string[] = [];
      for await (const kv of stub.getPrivateDataByPartialCompositeKey('col1', 't', [])) composite.push(kv.key);
      const query: string[] = [];
      for await (const kv of stub.getPrivateDataQueryResult('col1', '{"selector":{}}')) query.push(kv.key);
      const ep = new KeyEndorsementPolicy();
      ep.addOrgs('MEMBER', 'Org1MSP');
      await stub.setPrivateDataValidationParameter('col1', 'p1', ep.getPolicy());
      const vp = (await stub.getPrivateDataValidationParameter('col1', 'p1')).toString();
      await stub.deletePrivateData('col1', 'p2');
      await stub.purgePrivateData('col1', 'p1');
      return { value, hash, range, composite, query, vp };
    });
    expect(result.value).toBe('secret-1');
    expect(Buffer.from(result.hash).toString('hex')).toBe(createHash('sha256').update('secret-1').digest('hex'));
    expect(result.range).toEqual(['p1', 'p2']);
    expect(result.composite).toEqual(['\u0000t\u0000x\u0000']);
    expect(result.query).toEqual([]);
    expect(result.vp).toBe("AND('Org1MSP.member')");
    const types = requests(tx2).map((m) => [m.type, (m.payload as { collection?: string }).collection]);
    expect(types.filter(([t]) => t !== 'QUERY_STATE_NEXT' && t !== 'QUERY_STATE_CLOSE')).toEqual([
      ['GET_STATE', 'col1'],
      ['GET_PRIVATE_DATA_HASH', 'col1'],
      ['GET_STATE_BY_RANGE', 'col1'],
      ['GET_STATE_BY_RANGE', 'col1'],
      ['GET_QUERY_RESULT', 'col1'],
      ['PUT_STATE_METADATA', 'col1'],
      ['GET_STATE_METADATA', 'col1'],
      ['DEL_STATE', 'col1'],
      ['PURGE_PRIVATE_DATA', 'col1'],
    ]);
    expect(h.peer.get('p1', 'col1')).toBeUndefined();
    expect(h.peer.get('p2', 'col1')).toBeUndefined();
  });

  it('rejects a missing collection name', async () => {
    await expect(h.run(async (stub) => stub.getPrivateData('', 'k'))).rejects.toThrow(
      /collection must be a valid string/,
    );
  });
});

describe('chaincode-to-chaincode and errors', () => {
  it('invokeChaincode resolves with the called chaincode response', async () => {
    const { result, txId } = await h.run(async (stub) => {
      const local = await stub.invokeChaincode('other', ['get', 'k'], undefined);
      const remote = await stub.invokeChaincode('other', [Buffer.from('get')], 'ch2');
      return { local, remote };
    });
    expect(result.local.status).toBe(200);
    expect(Buffer.from(result.local.payload).toString()).toBe('other(get,k)');
    expect(Buffer.from(result.remote.payload).toString()).toBe('other/ch2(get)');
    expect(requests(txId)[0]?.payload).toEqual({ chaincodeName: 'other', args: [enc('get'), enc('k')] });
  });

  it('an Invoke that throws ends the transaction with ERROR', async () => {
    const txId = 'throws-1';
    h.chaincode.scripts.set(txId, async () => {
      throw new Error('chaincode exploded');
    });
    const outcome = await h.peer.invoke(['x'], { txId });
    expect(outcome).toMatchObject({ type: 'ERROR', payload: { message: 'chaincode exploded' } });
  });

  it('a stub kept past its transaction rejects further calls', async () => {
    let kept: ChaincodeStub | undefined;
    await h.run(async (stub) => {
      kept = stub;
    });
    await expect(kept!.getState('a')).rejects.toMatchObject({ code: 'CHAINCODE_TX_FINISHED' });
  });

  it('Shim.success / Shim.error build fabric responses', () => {
    expect(Shim.success(Buffer.from('x'))).toEqual({ status: 200, message: '', payload: Buffer.from('x') });
    expect(Shim.error('bad')).toEqual({ status: 500, message: 'bad', payload: Buffer.alloc(0) });
    expect(Shim.newLogger('t').name).toBe('t');
  });
});

describe('chaincode-as-a-service', () => {
  it('ChaincodeServer accepts the peer, registers and serves transactions', async () => {
    const chaincode = new ScriptedChaincode();
    const server = Shim.server(chaincode, { ccid: 'basic_1.0:abcd', address: '127.0.0.1:0' });
    expect(server).toBeInstanceOf(ChaincodeServer);
    await server.start();
    const peer = new FakePeer();
    try {
      await peer.dial(server.address);
      await peer.registered();
      expect(peer.registeredAs).toBe('basic_1.0:abcd');
      peer.seed('k', 'v');
      chaincode.scripts.set('s1', async (stub) => (await stub.getState('k')).toString());
      const outcome = await peer.invoke(['f'], { txId: 's1' });
      expect(outcome.type).toBe('COMPLETED');
      expect(chaincode.results.get('s1')).toBe('v');
    } finally {
      await peer.close();
      await server.stop();
    }
  });
});
