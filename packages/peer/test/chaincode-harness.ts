/**
 * Fixtures for the chaincode execution tests: chaincode packages on disk (a "kitchen sink" test
 * chaincode exercising every stub method, and the asset-transfer-basic sample compiled from
 * chaincode/basic), a level-backed ledger in a temp dir, and signed proposals from real identities.
 *
 * The chaincode packages get a node_modules/@loom/chaincode-sdk link to the workspace package, so
 * the launched process resolves the SDK's built dist (which `npm test` builds first).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildProposal,
  type Bytes,
  encodeSignedProposal,
  sha256,
  type TxReadWriteSet,
  type Version,
} from '@loom/common';
import type { TestIdentity } from '@loom/common/testing/index';
import ts from 'typescript';
import type { StateWrite } from '../src/ledger/state-db.js';
import type { LedgerStores } from '../src/ledger/ledger-stores.js';
import { toHex } from '@loom/common';

export const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
export const sdkDir = join(repoRoot, 'packages/chaincode-sdk');
export const sdkBin = join(sdkDir, 'dist/bin/start-chaincode.js');

function linkSdk(dir: string): void {
  mkdirSync(join(dir, 'node_modules/@loom'), { recursive: true });
  symlinkSync(sdkDir, join(dir, 'node_modules/@loom/chaincode-sdk'), 'dir');
}

/** A chaincode (Init/Invoke, fabric-shim style) whose functions each exercise one stub feature. */
const KITCHEN_SINK = `
import { ClientIdentity, Shim } from '@loom/chaincode-sdk';

const text = (b) => Buffer.from(b).toString('utf8');
const json = (v) => Shim.success(Buffer.from(JSON.stringify(v)));

async function collect(iterable) {
  const out = [];
  for await (const kv of iterable) out.push({ key: kv.key, value: text(kv.value) });
  return out;
}

const fns = {
  async get(stub, [k]) { return json({ value: text(await stub.getState(k)) }); },
  async put(stub, [k, v]) { await stub.putState(k, v); return json({}); },
  async del(stub, [k]) { await stub.deleteState(k); return json({}); },
  async getput(stub, [k, v]) {
    const before = text(await stub.getState(k));
    await stub.putState(k, v);
    const after = text(await stub.getState(k));
    return json({ before, after });
  },
  async range(stub, [s, e]) { return json(await collect(stub.getStateByRange(s, e))); },
  async rangePage(stub, [s, e, size, bookmark]) {
    const { iterator, metadata } = await stub.getStateByRangeWithPagination(s, e, Number(size), bookmark);
    const rows = await collect(iterator);
    return json({ rows, metadata });
  },
  async rangeFirst(stub, [s, e]) {
    const it = await stub.getStateByRange(s, e);
    const first = await it.next();
    await it.close();
    return json({ key: first.value?.key });
  },
  async putComposite(stub, [type, a, b, v]) {
    await stub.putState(stub.createCompositeKey(type, [a, b]), v);
    return json({});
  },
  async composite(stub, [type, ...attrs]) {
    const rows = await collect(stub.getStateByPartialCompositeKey(type, attrs));
    return json(rows.map((r) => ({ ...stub.splitCompositeKey(r.key), value: r.value })));
  },
  async compositePage(stub, [type, attr, size, bookmark]) {
    const { iterator, metadata } = await stub.getStateByPartialCompositeKeyWithPagination(type, [attr], Number(size), bookmark);
    return json({ rows: await collect(iterator), metadata });
  },
  async rich(stub, [q]) { return json(await collect(stub.getQueryResult(q))); },
  async richPage(stub, [q, size, bookmark]) {
    const { iterator, metadata } = await stub.getQueryResultWithPagination(q, Number(size), bookmark);
    return json({ rows: await collect(iterator), metadata });
  },
  async history(stub, [k]) {
    const out = [];
    for await (const m of stub.getHistoryForKey(k)) out.push({ txId: m.txId, value: text(m.value), isDelete: m.isDelete, seconds: m.timestamp.seconds });
    return json(out);
  },
  async event(stub, [name, payload]) { stub.setEvent(name, payload); return json({}); },
  async setVP(stub, [k, policy]) { await stub.setStateValidationParameter(k, Buffer.from(policy)); return json({}); },
  async getVP(stub, [k]) { return json({ vp: text(await stub.getStateValidationParameter(k)) }); },
  async pput(stub, [coll, k]) {
    const v = stub.getTransient().get('value');
    if (!v) throw new Error('transient "value" missing');
    await stub.putPrivateData(coll, k, v);
    return json({});
  },
  async pget(stub, [coll, k]) { return json({ value: text(await stub.getPrivateData(coll, k)) }); },
  async phash(stub, [coll, k]) { return json({ hash: Buffer.from(await stub.getPrivateDataHash(coll, k)).toString('hex') }); },
  async pdel(stub, [coll, k]) { await stub.deletePrivateData(coll, k); return json({}); },
  async ppurge(stub, [coll, k]) { await stub.purgePrivateData(coll, k); return json({}); },
  async prange(stub, [coll, s, e]) { return json(await collect(stub.getPrivateDataByRange(coll, s, e))); },
  async invoke(stub, [cc, ...args]) {
    const r = await stub.invokeChaincode(cc, args);
    return json({ status: r.status, message: r.message, payload: text(r.payload) });
  },
  async whoami(stub) {
    const id = new ClientIdentity(stub);
    const ts = stub.getTxTimestamp();
    return json({
      mspId: id.getMSPID(),
      id: id.getID(),
      role: id.getAttributeValue('role'),
      seconds: ts.seconds,
      nanos: ts.nanos,
      txId: stub.getTxID(),
      channel: stub.getChannelID(),
      peerMsp: stub.getMspID(),
      hasProposal: stub.getSignedProposal() !== null,
      transient: [...stub.getTransient().keys()],
    });
  },
  async fail(_stub, [msg]) { return Shim.error(msg); },
  async throws(_stub, [msg]) { throw new Error(msg); },
  async crash() { setTimeout(() => process.exit(3), 10); await new Promise((r) => setTimeout(r, 1000)); return json({}); },
  async loop() { for (;;) {} },
  async pid() { return json({ pid: process.pid }); },
};

export const chaincode = {
  async Init(stub) { return this.Invoke(stub); },
  async Invoke(stub) {
    const { fcn, params } = stub.getFunctionAndParameters();
    const f = fns[fcn];
    if (!f) return Shim.error('unknown function ' + fcn);
    return f(stub, params);
  },
};
`;

export function writeKitchenSink(dir: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'kitchen-sink', version: '1.0.0', type: 'module', main: 'index.js' }),
  );
  writeFileSync(join(dir, 'index.js'), KITCHEN_SINK);
  linkSdk(dir);
  return dir;
}

/** chaincode/basic compiled as in the SDK's own test: transpiled with decorator metadata. */
export function compileBasic(dir: string): string {
  const sampleDir = join(repoRoot, 'chaincode/basic');
  const srcDir = join(sampleDir, 'src');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'asset-transfer-basic', version: '1.0.0', type: 'module', main: 'index.js' }),
  );
  for (const f of readdirSync(srcDir).filter((n) => n.endsWith('.ts') && !n.endsWith('.test.ts'))) {
    const out = ts.transpileModule(readFileSync(join(srcDir, f), 'utf8'), {
      compilerOptions: {
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.ESNext,
        experimentalDecorators: true,
        emitDecoratorMetadata: true,
      },
    });
    writeFileSync(join(dir, f.replace(/\.ts$/, '.js')), out.outputText);
  }
  linkSdk(dir);
  return dir;
}

const enc = new TextEncoder();
export const utf = (s: string): Bytes => enc.encode(s);
export const str = (b: Uint8Array): string => new TextDecoder().decode(b);
export const keyHash = (k: string): Bytes => sha256(utf(k));
export const keyHashHex = (k: string): string => toHex(keyHash(k));

export interface ProposalOptions {
  channelId?: string;
  chaincode: string;
  args: string[];
  transient?: Record<string, Bytes>;
  timestamp?: number;
  nonce?: Bytes;
  isInit?: boolean;
}

/** A SignedProposal from `creator`, signed with its key. */
export async function signedProposal(
  creator: TestIdentity,
  o: ProposalOptions,
): Promise<{ bytes: Bytes; txId: string }> {
  const p = buildProposal({
    channelId: o.channelId ?? 'mychannel',
    chaincodeName: o.chaincode,
    args: o.args,
    transient: o.transient ?? {},
    isInit: o.isInit ?? false,
    creator: creator.serialized,
    nonce: o.nonce ?? randomBytes(24),
    timestamp: o.timestamp ?? Date.now(),
    hash: sha256,
  });
  const signature = await creator.signer.sign(p.proposalBytes);
  return { bytes: encodeSignedProposal({ proposalBytes: p.proposalBytes, signature }), txId: p.txId };
}

/** Applies a simulated rwset's public writes as a commit at `version` (what the committer would do). */
export async function commitRwset(stores: LedgerStores, rwset: TxReadWriteSet, version: Version): Promise<void> {
  const updates: StateWrite[] = [];
  for (const ns of rwset.nsRwsets) {
    for (const w of ns.rwset.writes) {
      updates.push(
        w.isDelete
          ? { namespace: ns.namespace, key: w.key, kind: 'delete', version }
          : { namespace: ns.namespace, key: w.key, kind: 'put', value: w.value, version },
      );
    }
  }
  const batch = stores.kv.batch();
  await stores.state.applyUpdates(batch, updates, version.blockNum + 1);
  await batch.write();
}
