/*
 * A test chaincode with one function per ChaincodeStub / ClientIdentity feature, in fabric-shim's
 * low-level style (Init/Invoke, `Shim.success` / `Shim.error`). Every function answers JSON (except
 * `Echo`, which answers its argument's raw bytes), so a test can assert on exactly what the stub
 * returned. Used by test/e2e/chaincode-stub.test.ts through real peer processes.
 *
 * Private inputs come through the transient map, as in Fabric: `value` for one private value,
 * `seed` for a JSON object of key → value.
 */
import {
  type ChaincodeInterface,
  type ChaincodeResponse,
  type ChaincodeStub,
  ClientIdentity,
  type Iterators,
  KeyEndorsementPolicy,
  Shim,
} from '@loom/chaincode-sdk';

type Handler = (stub: ChaincodeStub, params: string[]) => Promise<ChaincodeResponse> | ChaincodeResponse;

const text = (b: Uint8Array | undefined): string => (b === undefined ? '' : Buffer.from(b).toString('utf8'));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const json = (v: unknown): ChaincodeResponse => Shim.success(Buffer.from(JSON.stringify(v)));

interface Row {
  key: string;
  value: string;
}

/** Walks a result set with `for await`, which closes the iterator at the end. */
async function collect(iterable: AsyncIterable<Iterators.KV>): Promise<Row[]> {
  const out: Row[] = [];
  for await (const kv of iterable) out.push({ key: kv.key, value: text(kv.value) });
  return out;
}

function transientValue(stub: ChaincodeStub, name: string): Buffer {
  const v = stub.getTransient().get(name);
  if (v === undefined) throw new Error(`transient field "${name}" is missing`);
  return v;
}

function seedOf(stub: ChaincodeStub): Record<string, string> {
  return JSON.parse(text(transientValue(stub, 'seed'))) as Record<string, string>;
}

function keyPolicy(orgs: string[]): Uint8Array {
  const ep = new KeyEndorsementPolicy();
  if (orgs.length > 0) ep.addOrgs('PEER', ...orgs);
  return ep.getPolicy();
}

/** The policy bytes as text, and the orgs a KeyEndorsementPolicy reads back from them. */
function describePolicy(bytes: Uint8Array): { policy: string; orgs: string[] } {
  return { policy: text(bytes), orgs: new KeyEndorsementPolicy(bytes).listOrgs() };
}

const fns: Record<string, Handler> = {
  // ---- public state ----
  async Put(stub, [key, value]) {
    await stub.putState(key!, value!);
    return json({});
  },
  async PutMany(stub, [seed]) {
    const entries = Object.entries(JSON.parse(seed!) as Record<string, string>);
    for (const [k, v] of entries) await stub.putState(k, v);
    return json({ written: entries.length });
  },
  async Get(stub, [key]) {
    const v = await stub.getState(key!);
    return json({ value: text(v), length: v.length });
  },
  async Del(stub, [key]) {
    await stub.deleteState(key!);
    return json({});
  },
  /** No read-your-own-writes: reads inside the transaction see the committed state only. */
  async PutThenGet(stub, [key, value]) {
    const before = text(await stub.getState(key!));
    await stub.putState(key!, value!);
    const after = text(await stub.getState(key!));
    return json({ before, after });
  },
  async DelThenGet(stub, [key]) {
    const before = text(await stub.getState(key!));
    await stub.deleteState(key!);
    const after = text(await stub.getState(key!));
    return json({ before, after });
  },
  async Range(stub, [start, end]) {
    return json(await collect(stub.getStateByRange(start!, end!)));
  },
  /** The iterator by hand: `next()` up to n times (stopping when done), then `close()`. */
  async RangeNext(stub, [start, end, n]) {
    const it = await stub.getStateByRange(start!, end!);
    const keys: string[] = [];
    let done = false;
    for (let i = 0; i < Number(n) && !done; i++) {
      const r = await it.next();
      if (r.done) done = true;
      else keys.push(r.value.key);
    }
    await it.close();
    return json({ keys, done });
  },
  async RangePage(stub, [start, end, size, bookmark]) {
    const { iterator, metadata } = await stub.getStateByRangeWithPagination(start!, end!, Number(size), bookmark);
    return json({ rows: await collect(iterator), metadata });
  },
  /**
   * Fabric's rule: paginated queries (and private-data range/rich queries) are for read-only
   * transactions. `order` "query-first" queries, then writes; "write-first" the other way round.
   */
  async QueryAndWrite(stub, [kind, order, key]) {
    const query = async () => {
      if (kind === 'paged') await collect((await stub.getStateByRangeWithPagination('r:a', 'r;', 2)).iterator);
      else if (kind === 'private-range') await collect(stub.getPrivateDataByRange('shared', 'pr:a', 'pr;'));
      else if (kind === 'range') await collect(stub.getStateByRange('r:a', 'r;'));
      else throw new Error(`unknown query kind ${kind}`);
    };
    if (order === 'query-first') {
      await query();
      await stub.putState(key!, 'written');
    } else {
      await stub.putState(key!, 'written');
      await query();
    }
    return json({});
  },
  async MakeCompositeKey(stub, [objectType, ...attributes]) {
    const key = stub.createCompositeKey(objectType!, attributes);
    return json({ key, split: stub.splitCompositeKey(key), simple: stub.splitCompositeKey('plain-key') });
  },
  async PutComposite(stub, [objectType, ...rest]) {
    const value = rest.pop()!;
    await stub.putState(stub.createCompositeKey(objectType!, rest), value);
    return json({});
  },
  async Composite(stub, [objectType, ...attributes]) {
    const rows = await collect(stub.getStateByPartialCompositeKey(objectType!, attributes));
    return json(rows.map((r) => ({ ...stub.splitCompositeKey(r.key), value: r.value })));
  },
  async CompositePage(stub, [objectType, attrs, size, bookmark]) {
    const { iterator, metadata } = await stub.getStateByPartialCompositeKeyWithPagination(
      objectType!,
      JSON.parse(attrs!) as string[],
      Number(size),
      bookmark,
    );
    const rows = await collect(iterator);
    return json({ rows: rows.map((r) => ({ ...stub.splitCompositeKey(r.key), value: r.value })), metadata });
  },
  async Rich(stub, [query]) {
    return json(await collect(stub.getQueryResult(query!)));
  },
  async RichPage(stub, [query, size, bookmark]) {
    const { iterator, metadata } = await stub.getQueryResultWithPagination(query!, Number(size), bookmark);
    return json({ rows: await collect(iterator), metadata });
  },
  async History(stub, [key]) {
    const out: unknown[] = [];
    for await (const m of stub.getHistoryForKey(key!)) {
      out.push({ txId: m.txId, value: text(m.value), isDelete: m.isDelete, seconds: m.timestamp.seconds });
    }
    return json(out);
  },

  // ---- the transaction's inputs ----
  async TxInfo(stub) {
    const creator = stub.getCreator();
    const ts = stub.getTxTimestamp();
    const sp = stub.getSignedProposal();
    const transient: Record<string, string> = {};
    for (const [k, v] of stub.getTransient()) transient[k] = text(v);
    return json({
      txId: stub.getTxID(),
      channelId: stub.getChannelID(),
      creatorMspId: creator.mspid,
      creatorIdBytes: text(creator.idBytes),
      peerMspId: stub.getMspID(),
      timestamp: { seconds: ts.seconds, nanos: ts.nanos },
      dateMillis: stub.getDateTimestamp().getTime(),
      transient,
      binding: stub.getBinding(),
      functionAndParameters: stub.getFunctionAndParameters(),
      args: stub.getArgs(),
      stringArgs: stub.getStringArgs(),
      signedProposal:
        sp === null
          ? null
          : {
              proposalBytes: hex(sp.proposalBytes),
              signatureLength: sp.signature.length,
              txId: sp.proposal.header.channelHeader.txId,
              channelId: sp.proposal.header.channelHeader.channelId,
              nonce: hex(sp.proposal.header.signatureHeader.nonce),
              creator: hex(sp.proposal.header.signatureHeader.creator),
              transientKeys: [...sp.proposal.payload.transientMap.keys()].sort(),
            },
    });
  },
  async Whoami(stub, [attr, expected]) {
    const id = new ClientIdentity(stub);
    return json({
      id: id.getID(),
      mspId: id.getMSPID(),
      attribute: id.getAttributeValue(attr!),
      missingAttribute: id.getAttributeValue('no.such.attribute'),
      asserted: id.assertAttributeValue(attr!, expected!),
      assertedWrong: id.assertAttributeValue(attr!, `${expected}-not`),
      idBytes: text(id.getIDBytes()),
    });
  },

  // ---- events, other chaincode ----
  async Event(stub, [name, payload]) {
    stub.setEvent(name!, payload!);
    return json({});
  },
  async Invoke(stub, [chaincode, ...args]) {
    const r = await stub.invokeChaincode(chaincode!, args);
    return json({ status: r.status, message: r.message, payload: text(r.payload) });
  },

  // ---- state-based endorsement ----
  async SetKeyPolicy(stub, [key, ...orgs]) {
    await stub.setStateValidationParameter(key!, keyPolicy(orgs));
    return json({});
  },
  async GetKeyPolicy(stub, [key]) {
    return json(describePolicy(await stub.getStateValidationParameter(key!)));
  },

  // ---- private data ----
  async PPut(stub, [collection, key]) {
    const value = transientValue(stub, 'value');
    const before = text(await stub.getPrivateData(collection!, key!));
    await stub.putPrivateData(collection!, key!, value);
    const after = text(await stub.getPrivateData(collection!, key!));
    return json({ before, after });
  },
  /** A blind write (no read first): a peer outside the collection can endorse it. */
  async PWrite(stub, [collection, key]) {
    await stub.putPrivateData(collection!, key!, transientValue(stub, 'value'));
    return json({});
  },
  async PSeed(stub, [collection]) {
    const entries = Object.entries(seedOf(stub));
    for (const [k, v] of entries) await stub.putPrivateData(collection!, k, v);
    return json({ written: entries.length });
  },
  async PPutComposite(stub, [collection, objectType, ...attributes]) {
    await stub.putPrivateData(
      collection!,
      stub.createCompositeKey(objectType!, attributes),
      transientValue(stub, 'value'),
    );
    return json({});
  },
  async PGet(stub, [collection, key]) {
    const v = await stub.getPrivateData(collection!, key!);
    return json({ value: text(v), length: v.length });
  },
  async PHash(stub, [collection, key]) {
    return json({ hash: hex(await stub.getPrivateDataHash(collection!, key!)) });
  },
  async PDel(stub, [collection, key]) {
    const before = text(await stub.getPrivateData(collection!, key!));
    await stub.deletePrivateData(collection!, key!);
    const after = text(await stub.getPrivateData(collection!, key!));
    return json({ before, after });
  },
  async PPurge(stub, [collection, key]) {
    await stub.purgePrivateData(collection!, key!);
    return json({});
  },
  async PRange(stub, [collection, start, end]) {
    return json(await collect(stub.getPrivateDataByRange(collection!, start!, end!)));
  },
  async PComposite(stub, [collection, objectType, ...attributes]) {
    const rows = await collect(stub.getPrivateDataByPartialCompositeKey(collection!, objectType!, attributes));
    return json(rows.map((r) => ({ ...stub.splitCompositeKey(r.key), value: r.value })));
  },
  async PRich(stub, [collection, query]) {
    return json(await collect(stub.getPrivateDataQueryResult(collection!, query!)));
  },
  async PSetKeyPolicy(stub, [collection, key, ...orgs]) {
    await stub.setPrivateDataValidationParameter(collection!, key!, keyPolicy(orgs));
    return json({});
  },
  async PGetKeyPolicy(stub, [collection, key]) {
    return json(describePolicy(await stub.getPrivateDataValidationParameter(collection!, key!)));
  },

  // ---- responses ----
  /** `Shim.success` with the argument's bytes as they are (no JSON). */
  Echo(_stub, [payload]) {
    return payload === undefined ? Shim.success() : Shim.success(payload);
  },
  Fail(_stub, [message]) {
    return Shim.error(message!);
  },
};

export const chaincode: ChaincodeInterface = {
  Init(stub) {
    return this.Invoke(stub);
  },
  async Invoke(stub) {
    const { fcn, params } = stub.getFunctionAndParameters();
    const f = Object.hasOwn(fns, fcn) ? fns[fcn] : undefined;
    if (f === undefined) return Shim.error(`stubcheck: unknown function ${JSON.stringify(fcn)}`);
    try {
      return await f(stub, params);
    } catch (e) {
      return Shim.error(`stubcheck ${fcn}: ${(e as Error).message}`);
    }
  },
};
