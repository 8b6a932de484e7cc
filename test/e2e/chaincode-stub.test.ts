/**
 * Every ChaincodeStub method through real peer processes (#6): `loom network up --detach` (CAs,
 * 3 Raft orderers, one peer process per org of Org1 and Org2) deploys the test chaincode
 * `chaincode/stubcheck` from its directory — packaged, compiled by each peer at install, approved by
 * both orgs, committed with a collections config (`shared`: Org1+Org2) and a rich-query index in its
 * META-INF — next to `basic`. Then, with only the client SDK (submit and evaluate, as User1 of each
 * org and as a CA-registered user with an attribute), each stub method is called and its result
 * asserted: state, ranges and composite keys with and without pagination, rich queries, history,
 * the transaction's inputs (txId, channel, creator, peer MSP, timestamp, transient, binding, signed
 * proposal), ClientIdentity, events, chaincode-to-chaincode calls, key-level endorsement policies
 * (enforced at validation), private data in an explicit and an implicit collection, iterators by
 * `for await` and by `next()`/`close()`, Shim.success / Shim.error — including Fabric's rule that a
 * transaction never reads its own writes.
 *
 * Ports: the default network-config's + 55500 (62550–64951), data in a temp dir. They lie above
 * Linux's ephemeral range (32768–60999). With 52000 they reached into it, and a CI run once saw the
 * Org1 peer exit at start, most likely because an outgoing connection already held one of its ports.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaClient } from '@loom/ca';
import {
  CommitError,
  type Contract,
  connect,
  EndorseError,
  EvaluateError,
  type Gateway,
  type ProposalOptions,
  signers,
} from '@loom/client';
import {
  decodeHeader,
  decodeProposal,
  decodeSignatureHeader,
  loadNetworkConfig,
  type NetworkConfig,
} from '@loom/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caUrl } from '../../packages/cli/src/network/enroll.js';
import { findOrg, gatewayFor, loadIdentity, networkTlsRoots } from '../../packages/cli/src/network/gateway.js';
import { layout } from '../../packages/cli/src/network/layout.js';
import { Gateways, gatewayFailure, LaunchedNetwork, LOOM, ROOT, waitFor, writeNetworkConfig } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'loom-ccstub-'));
const OFFSET = 55_500;
const CHANNEL = 'mychannel';
const CC = 'stubcheck';
const ccDir = join(ROOT, 'chaincode/stubcheck');
const dec = new TextDecoder();

/**
 * The default network-config, ports + OFFSET, data in `work`; `basic` and `stubcheck` each endorsable
 * by either org's peer (so a single org can endorse, and key-level policies decide the rest).
 */
const launched = new LaunchedNetwork(
  writeNetworkConfig(join(work, 'net.yaml'), {
    offset: OFFSET,
    dataDir: join(work, 'data'),
    name: 'loomstub',
    chaincodes: [
      {
        name: 'basic',
        path: join(ROOT, 'chaincode/basic'),
        channel: CHANNEL,
        endorsementPolicy: "OR('Org1MSP.peer', 'Org2MSP.peer')",
      },
      {
        name: CC,
        path: ccDir,
        channel: CHANNEL,
        endorsementPolicy: "OR('Org1MSP.peer', 'Org2MSP.peer')",
        collections: join(ccDir, 'collections_config.json'),
      },
    ],
  }),
  join(work, 'data'),
);

const sha256Hex = (s: string | Uint8Array) => createHash('sha256').update(s).digest('hex');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
/** Fabric's composite key layout, written out independently of the SDK. */
const compositeKey = (type: string, ...attrs: string[]) =>
  `\u0000${type}\u0000${attrs.map((a) => `${a}\u0000`).join('')}`;

/** Every regular file under `dir`. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** Polls `f` until it returns something other than undefined (bounded in count and time). */
const until = <T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> =>
  waitFor(what, f, { timeoutMs, intervalMs: 250, maxTries: 200 });

let net: NetworkConfig;
let g1: Gateway; // User1 of Org1 on Org1's peer
let g2: Gateway; // User1 of Org2 on Org2's peer
const gateways = new Gateways();

const cc = (g: Gateway): Contract => g.getNetwork(CHANNEL).getContract(CC);
const parse = (b: Uint8Array): unknown => JSON.parse(dec.decode(b));

async function evaluate<T = unknown>(g: Gateway, fn: string, args: string[], o: ProposalOptions = {}): Promise<T> {
  return parse(await cc(g).evaluate(fn, { ...o, arguments: args })) as T;
}

/** Endorses, submits and waits for the commit; answers the status whatever the validation code. */
async function submit<T = unknown>(
  g: Gateway,
  fn: string,
  args: string[],
  o: ProposalOptions = {},
): Promise<{ txId: string; code: string; blockNumber: number; result: T }> {
  const tx = await cc(g)
    .newProposal(fn, { ...o, arguments: args })
    .endorse();
  const submitted = await tx.submit();
  const status = await submitted.getStatus();
  return {
    txId: tx.getTransactionId(),
    code: status.codeName,
    blockNumber: status.blockNumber,
    result: parse(submitted.getResult()) as T,
  };
}

/** `submit`, expecting a VALID commit. */
async function commit<T = unknown>(g: Gateway, fn: string, args: string[], o: ProposalOptions = {}) {
  const r = await submit<T>(g, fn, args, o);
  expect(r.code, `${fn}(${args.join(', ')})`).toBe('VALID');
  return r;
}

const failure = gatewayFailure;

/** `x509::/A=b/C=d::/E=f` as fabric-shim's ClientIdentity.getID() writes it. */
function fabricId(pem: string): string {
  const c = new X509Certificate(pem);
  const dn = (s: string) =>
    s
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => `/${l}`)
      .join('');
  return `x509::${dn(c.subject)}::${dn(c.issuer)}`;
}

/** A client of Org1 registered at Org1's CA with the attribute role=auditor in its certificate. */
async function auditorGateway(): Promise<{ gateway: Gateway; certPem: string }> {
  const org = findOrg(net, 'Org1MSP');
  const caDir = layout.caDir(net, org);
  const ca = new CaClient({
    url: caUrl(net, org),
    tlsRootPem: readFileSync(join(caDir, 'data', 'tlsca-cert.pem'), 'utf8'),
  });
  const registrar = {
    certPem: readFileSync(join(caDir, 'registrar', 'cert.pem'), 'utf8'),
    keyPem: readFileSync(join(caDir, 'registrar', 'key.pem'), 'utf8'),
  };
  const secret = 'auditor1-secret';
  await ca.register(registrar, {
    id: 'auditor1',
    type: 'client',
    secret,
    attrs: [{ name: 'role', value: 'auditor', ecert: true }],
  });
  const e = await ca.enroll({ id: 'auditor1', secret });
  const peer = org.peers[0]!;
  const gateway = connect({
    endpoint: `https://${peer.host}:${peer.port}`,
    identity: { mspId: org.mspId, credentials: new TextEncoder().encode(e.certPem) },
    signer: signers.newPrivateKeySigner(e.keyPem),
    tls: { rootCerts: await networkTlsRoots(net) },
    endorseOptions: { timeoutMs: 60_000 },
    evaluateOptions: { timeoutMs: 60_000 },
    commitStatusOptions: { timeoutMs: 60_000 },
  });
  gateways.add(gateway);
  return { gateway, certPem: e.certPem };
}

beforeAll(async () => {
  net = await loadNetworkConfig(launched.configFile);
  const r = await launched.up(330_000);
  expect(r.out).toMatch(/chaincode stubcheck: definition 1\.0 sequence 1 committed on mychannel/);
  g1 = await gatewayFor(net, findOrg(net, 'Org1MSP'), 'User1');
  g2 = await gatewayFor(net, findOrg(net, 'Org2MSP'), 'User1');
  gateways.add(g1, g2);
}, 360_000);

afterAll(async () => {
  gateways.closeAll();
  await launched.down(60_000);
  rmSync(work, { recursive: true, force: true });
}, 90_000);

describe.skipIf(!existsSync(LOOM))('every stub method through real peers (chaincode/stubcheck)', () => {
  it('getState / putState / deleteState, with no read-your-own-writes', async () => {
    await commit(g1, 'Put', ['ps:k', 'v1']);
    expect(await evaluate(g1, 'Get', ['ps:k'])).toEqual({ value: 'v1', length: 2 });
    // The other org's peer committed the same block.
    await until('Org2 sees ps:k', async () =>
      (await evaluate<{ value: string }>(g2, 'Get', ['ps:k'])).value === 'v1' ? true : undefined,
    );

    // Inside one transaction, a read after a write still sees the committed value.
    const put = await commit(g1, 'PutThenGet', ['ps:k', 'v2']);
    expect(put.result).toEqual({ before: 'v1', after: 'v1' });
    expect(await evaluate(g1, 'Get', ['ps:k'])).toEqual({ value: 'v2', length: 2 });
    const del = await commit(g1, 'DelThenGet', ['ps:k']);
    expect(del.result).toEqual({ before: 'v2', after: 'v2' });
    expect(await evaluate(g1, 'Get', ['ps:k'])).toEqual({ value: '', length: 0 });
    expect(await evaluate(g1, 'Get', ['ps:never-written'])).toEqual({ value: '', length: 0 });

    // Evaluate simulates only: its write never reaches the ledger.
    expect(await evaluate(g1, 'PutThenGet', ['ps:eval', 'x'])).toEqual({ before: '', after: '' });
    expect(await evaluate(g1, 'Get', ['ps:eval'])).toEqual({ value: '', length: 0 });

    // Bad input is the SDK's clear error, returned as the chaincode's error response.
    const bad = await failure(cc(g1).evaluate('Put', { arguments: ['', 'x'] }));
    expect(bad).toBeInstanceOf(EvaluateError);
    expect(bad.code).toBe('CHAINCODE_ERROR');
    expect(bad.message).toContain('key must be a non-empty string');
  }, 120_000);

  it('ranges (for await, next()/close(), pagination) and composite keys (create/split, partial, pagination)', async () => {
    const seed: Record<string, string> = { 'r:a': 'A', 'r:b': 'B', 'r:c': 'C', 'r:d': 'D', 'r:e': 'E' };
    seed[compositeKey('color', 'blue', 'k1')] = 'blue-1';
    seed[compositeKey('color', 'blue', 'k2')] = 'blue-2';
    seed[compositeKey('color', 'red', 'k3')] = 'red-3';
    expect((await commit(g1, 'PutMany', [JSON.stringify(seed)])).result).toEqual({ written: 8 });

    const letters = (rows: { key: string }[]) => rows.map((r) => r.key);
    // End key exclusive; values as stored.
    expect(await evaluate(g1, 'Range', ['r:a', 'r:d'])).toEqual([
      { key: 'r:a', value: 'A' },
      { key: 'r:b', value: 'B' },
      { key: 'r:c', value: 'C' },
    ]);
    // An open start: simple keys only, never the composite ones (Fabric's empty-key substitute).
    const open = await evaluate<{ key: string }[]>(g1, 'Range', ['', 'r:c']);
    expect(letters(open)).toEqual(expect.arrayContaining(['r:a', 'r:b']));
    expect(open.some((r) => r.key.startsWith('\u0000'))).toBe(false);
    expect(letters(open)).not.toContain('r:c');

    // next() by hand, then close(): part way, and to the end where next() says done.
    expect(await evaluate(g1, 'RangeNext', ['r:a', 'r;', '2'])).toEqual({ keys: ['r:a', 'r:b'], done: false });
    expect(await evaluate(g1, 'RangeNext', ['r:a', 'r;', '9'])).toEqual({
      keys: ['r:a', 'r:b', 'r:c', 'r:d', 'r:e'],
      done: true,
    });

    type Page = { rows: { key: string; value: string }[]; metadata: { fetchedRecordsCount: number; bookmark: string } };
    const p1 = await evaluate<Page>(g1, 'RangePage', ['r:a', 'r;', '2', '']);
    expect(letters(p1.rows)).toEqual(['r:a', 'r:b']);
    expect(p1.metadata.fetchedRecordsCount).toBe(2);
    expect(p1.metadata.bookmark).not.toBe('');
    const p2 = await evaluate<Page>(g1, 'RangePage', ['r:a', 'r;', '2', p1.metadata.bookmark]);
    expect(letters(p2.rows)).toEqual(['r:c', 'r:d']);
    const p3 = await evaluate<Page>(g1, 'RangePage', ['r:a', 'r;', '2', p2.metadata.bookmark]);
    expect(p3.rows).toEqual([{ key: 'r:e', value: 'E' }]);
    expect(p3.metadata).toEqual({ fetchedRecordsCount: 1, bookmark: '' });

    expect(await evaluate(g1, 'MakeCompositeKey', ['color', 'blue', 'k1'])).toEqual({
      key: compositeKey('color', 'blue', 'k1'),
      split: { objectType: 'color', attributes: ['blue', 'k1'] },
      simple: { objectType: null, attributes: [] },
    });
    expect(await evaluate(g1, 'Composite', ['color', 'blue'])).toEqual([
      { objectType: 'color', attributes: ['blue', 'k1'], value: 'blue-1' },
      { objectType: 'color', attributes: ['blue', 'k2'], value: 'blue-2' },
    ]);
    expect(await evaluate(g1, 'Composite', ['color'])).toHaveLength(3);
    expect(await evaluate(g1, 'Composite', ['size'])).toEqual([]);
    type CPage = { rows: { attributes: string[] }[]; metadata: { fetchedRecordsCount: number; bookmark: string } };
    const c1 = await evaluate<CPage>(g1, 'CompositePage', ['color', '[]', '2', '']);
    expect(c1.rows.map((r) => r.attributes)).toEqual([
      ['blue', 'k1'],
      ['blue', 'k2'],
    ]);
    expect(c1.metadata.bookmark).not.toBe('');
    const c2 = await evaluate<CPage>(g1, 'CompositePage', ['color', '[]', '2', c1.metadata.bookmark]);
    expect(c2.rows.map((r) => r.attributes)).toEqual([['red', 'k3']]);
    expect(c2.metadata.bookmark).toBe('');

    // More results than the peer sends in one page (100): the iterators fetch the following pages.
    const bulk: Record<string, string> = {};
    const bulkKeys: string[] = [];
    for (let i = 0; i < 250; i++) {
      const k = `bulk:${String(i).padStart(3, '0')}`;
      bulkKeys.push(k);
      bulk[k] = JSON.stringify({ docType: 'bulk', n: i });
    }
    await commit(g1, 'PutMany', [JSON.stringify(bulk)]);
    const all = await evaluate<{ key: string; value: string }[]>(g1, 'Range', ['bulk:', 'bulk;']);
    expect(letters(all)).toEqual(bulkKeys);
    expect(JSON.parse(all[249]!.value)).toEqual({ docType: 'bulk', n: 249 });
    expect(await evaluate(g1, 'RangeNext', ['bulk:', 'bulk;', '150'])).toEqual({
      keys: bulkKeys.slice(0, 150),
      done: false,
    });
    const rich = await evaluate<{ key: string }[]>(g1, 'Rich', [JSON.stringify({ selector: { docType: 'bulk' } })]);
    expect(letters(rich)).toEqual(bulkKeys);

    // A composite attribute may not hold U+0000: the SDK refuses it.
    const bad = await failure(cc(g1).evaluate('MakeCompositeKey', { arguments: ['color', 'a\u0000b'] }));
    expect(bad.message).toMatch(/reserved/);
  }, 120_000);

  it('getQueryResult (+ WithPagination) over JSON documents, with the index shipped in META-INF', async () => {
    const doc = (owner: string, size: number) => JSON.stringify({ docType: 'thing', owner, size });
    await commit(g1, 'PutMany', [
      JSON.stringify({ 'doc:1': doc('ann', 1), 'doc:2': doc('bob', 2), 'doc:3': doc('ann', 3), 'doc:x': 'not json' }),
    ]);
    const ann = [
      { key: 'doc:1', value: doc('ann', 1) },
      { key: 'doc:3', value: doc('ann', 3) },
    ];
    expect(await evaluate(g1, 'Rich', [JSON.stringify({ selector: { docType: 'thing', owner: 'ann' } })])).toEqual(ann);
    // Naming the package's index explicitly gives the same answer.
    const withIndex = {
      selector: { docType: 'thing', owner: 'ann' },
      use_index: ['_design/indexOwnerDoc', 'indexOwner'],
    };
    expect(await evaluate(g1, 'Rich', [JSON.stringify(withIndex)])).toEqual(ann);
    const sorted = await evaluate<{ key: string }[]>(g1, 'Rich', [
      JSON.stringify({ selector: { docType: 'thing' }, sort: [{ size: 'desc' }] }),
    ]);
    expect(sorted.map((r) => r.key)).toEqual(['doc:3', 'doc:2', 'doc:1']);

    type Page = { rows: { key: string }[]; metadata: { fetchedRecordsCount: number; bookmark: string } };
    const q = JSON.stringify({ selector: { docType: 'thing' } });
    const p1 = await evaluate<Page>(g1, 'RichPage', [q, '2', '']);
    expect(p1.rows.map((r) => r.key)).toEqual(['doc:1', 'doc:2']);
    expect(p1.metadata.fetchedRecordsCount).toBe(2);
    expect(p1.metadata.bookmark).not.toBe('');
    const p2 = await evaluate<Page>(g1, 'RichPage', [q, '2', p1.metadata.bookmark]);
    expect(p2.rows.map((r) => r.key)).toEqual(['doc:3']);

    // Each peer installed the package's indexes, the public one and the collection's.
    const installed = filesUnder(net.dataDir).filter((f) =>
      /\/chaincode\/stubcheck_1\.0\.[0-9a-f]{64}\/META-INF\//.test(f),
    );
    const rel = (f: string) => f.slice(f.indexOf('/META-INF/') + 1);
    expect(installed.map(rel).sort()).toEqual([
      'META-INF/statedb/couchdb/collections/shared/indexes/indexOwner.json',
      'META-INF/statedb/couchdb/collections/shared/indexes/indexOwner.json',
      'META-INF/statedb/couchdb/indexes/indexOwner.json',
      'META-INF/statedb/couchdb/indexes/indexOwner.json',
    ]);

    const bad = await failure(cc(g1).evaluate('Rich', { arguments: ['{"selector":'] }));
    expect(bad).toBeInstanceOf(EvaluateError);
    expect(bad.code).toBe('CHAINCODE_ERROR');
  }, 120_000);

  it('getHistoryForKey: every committed write and delete, newest first, with their txIds', async () => {
    const t0 = Math.floor(Date.now() / 1000) - 2;
    const w1 = await commit(g1, 'Put', ['hist:k', 'h1']);
    const w2 = await commit(g2, 'Put', ['hist:k', 'h2']);
    const d = await commit(g1, 'Del', ['hist:k']);
    const t1 = Math.ceil(Date.now() / 1000) + 2;
    type Mod = { txId: string; value: string; isDelete: boolean; seconds: number };
    const history = await evaluate<Mod[]>(g1, 'History', ['hist:k']);
    expect(history.map(({ txId, value, isDelete }) => ({ txId, value, isDelete }))).toEqual([
      { txId: d.txId, value: '', isDelete: true },
      { txId: w2.txId, value: 'h2', isDelete: false },
      { txId: w1.txId, value: 'h1', isDelete: false },
    ]);
    for (const m of history) {
      expect(m.seconds).toBeGreaterThanOrEqual(t0);
      expect(m.seconds).toBeLessThanOrEqual(t1);
    }
    expect(await evaluate(g1, 'History', ['hist:none'])).toEqual([]);
  }, 120_000);

  it('the transaction inputs: txId, channel, creator, peer MSP, timestamps, transient, binding, signed proposal, args', async () => {
    const user1 = await loadIdentity(net, findOrg(net, 'Org1MSP'), 'User1');
    const t0 = Date.now();
    const proposal = cc(g1).newProposal('TxInfo', {
      arguments: ['p1', 'p2'],
      transientData: { secret: 's3cr3t', other: 'two' },
    });
    const info = parse(await proposal.evaluate()) as Record<string, unknown> & {
      timestamp: { seconds: number; nanos: number };
      dateMillis: number;
      signedProposal: Record<string, unknown>;
    };
    const t1 = Date.now();

    // The client's view of the same proposal, decoded here independently of the SDK.
    const bytes = proposal.getBytes();
    const header = decodeHeader(decodeProposal(bytes).header);
    const sigHeader = decodeSignatureHeader(header.signatureHeader);
    const binding = createHash('sha256').update(sigHeader.nonce).update(sigHeader.creator).digest('hex');

    expect(info).toMatchObject({
      txId: proposal.getTransactionId(),
      channelId: CHANNEL,
      creatorMspId: 'Org1MSP',
      creatorIdBytes: user1.certPem,
      peerMspId: 'Org1MSP',
      transient: { secret: 's3cr3t', other: 'two' },
      binding,
      functionAndParameters: { fcn: 'TxInfo', params: ['p1', 'p2'] },
      args: ['TxInfo', 'p1', 'p2'],
      stringArgs: ['TxInfo', 'p1', 'p2'],
    });
    expect(info.signedProposal).toEqual({
      proposalBytes: hex(bytes),
      signatureLength: expect.any(Number),
      txId: proposal.getTransactionId(),
      channelId: CHANNEL,
      nonce: hex(sigHeader.nonce),
      creator: hex(sigHeader.creator),
      transientKeys: ['other', 'secret'],
    });
    expect(info.signedProposal['signatureLength']).toBeGreaterThan(60);
    // The proposal's timestamp, as seconds + nanos and as a Date.
    const millis = info.timestamp.seconds * 1000 + Math.floor(info.timestamp.nanos / 1e6);
    expect(millis).toBeGreaterThanOrEqual(t0 - 1000);
    expect(millis).toBeLessThanOrEqual(t1 + 1000);
    expect(Math.abs(info.dateMillis - millis)).toBeLessThanOrEqual(1);

    // On Org2's peer, the peer's MSP is Org2's, the creator Org2's User1; submitted, the same txId.
    const on2 = await submit<{ txId: string; peerMspId: string; creatorMspId: string; transient: object }>(
      g2,
      'TxInfo',
      [],
    );
    expect(on2.code).toBe('VALID');
    expect(on2.result).toMatchObject({ txId: on2.txId, peerMspId: 'Org2MSP', creatorMspId: 'Org2MSP', transient: {} });
  }, 120_000);

  it('ClientIdentity: getID, getMSPID, getAttributeValue, assertAttributeValue, getIDBytes', async () => {
    const user1 = await loadIdentity(net, findOrg(net, 'Org2MSP'), 'User1');
    expect(await evaluate(g2, 'Whoami', ['hf.EnrollmentID', 'User1@org2.example.com'])).toEqual({
      id: fabricId(user1.certPem),
      mspId: 'Org2MSP',
      attribute: 'User1@org2.example.com',
      missingAttribute: null,
      asserted: true,
      assertedWrong: false,
      idBytes: user1.certPem,
    });
    expect(fabricId(user1.certPem)).toMatch(/^x509::\/.*CN=User1@org2\.example\.com.*::\/.+/);

    // A user the CA registered with role=auditor carries it in its certificate.
    const auditor = await auditorGateway();
    expect(await evaluate(auditor.gateway, 'Whoami', ['role', 'auditor'])).toEqual({
      id: fabricId(auditor.certPem),
      mspId: 'Org1MSP',
      attribute: 'auditor',
      missingAttribute: null,
      asserted: true,
      assertedWrong: false,
      idBytes: auditor.certPem,
    });
    expect(await evaluate(g2, 'Whoami', ['role', 'auditor'])).toMatchObject({ attribute: null, asserted: false });
  }, 120_000);

  it('setEvent: the chaincode event reaches event listeners with its transaction', async () => {
    const r = await commit(g1, 'Event', ['StubChecked', 'payload-42']);
    const events = await g2.getNetwork(CHANNEL).getChaincodeEvents(CC, { startBlock: r.blockNumber });
    const timer = setTimeout(() => events.close(), 60_000);
    let found: { eventName: string; payload: Uint8Array; transactionId: string; blockNumber: number } | undefined;
    try {
      for await (const e of events) {
        if (e.transactionId === r.txId) {
          found = e;
          break;
        }
      }
    } finally {
      clearTimeout(timer);
      events.close();
    }
    expect(found).toBeDefined();
    expect(found!.eventName).toBe('StubChecked');
    expect(dec.decode(found!.payload)).toBe('payload-42');
    expect(found!.blockNumber).toBe(r.blockNumber);

    const bad = await failure(cc(g1).evaluate('Event', { arguments: ['', 'x'] }));
    expect(bad.message).toMatch(/Event name must be a non-empty string/);
  }, 120_000);

  it('invokeChaincode: calls basic in the same transaction; errors come back as responses', async () => {
    type Resp = { status: number; message: string; payload: string };
    const created = await commit<Resp>(g1, 'Invoke', ['basic', 'CreateAsset', 'inv-1', 'red', '3', 'Ann', '100']);
    expect(created.result.status).toBe(200);
    // The callee's write committed with the caller's transaction.
    const asset = parse(await g1.getNetwork(CHANNEL).getContract('basic').evaluateTransaction('ReadAsset', 'inv-1'));
    expect(asset).toMatchObject({ ID: 'inv-1', Color: 'red', Owner: 'Ann' });

    const read = await evaluate<Resp>(g1, 'Invoke', ['basic', 'ReadAsset', 'inv-1']);
    expect(read.status).toBe(200);
    expect(JSON.parse(read.payload)).toMatchObject({ ID: 'inv-1', Owner: 'Ann' });

    const missing = await evaluate<Resp>(g1, 'Invoke', ['basic', 'ReadAsset', 'inv-none']);
    expect(missing.status).toBe(500);
    expect(missing.message).toMatch(/inv-none/);
    const ghost = await evaluate<Resp>(g1, 'Invoke', ['ghost', 'x']);
    expect(ghost).toMatchObject({ status: 500, message: expect.stringMatching(/ghost is not defined/) });
    const self = await evaluate<Resp>(g1, 'Invoke', [CC, 'Get', 'x']);
    expect(self).toMatchObject({ status: 500, message: expect.stringMatching(/recursive/) });
  }, 120_000);

  it('state-based endorsement: KeyEndorsementPolicy set/get, enforced at validation', async () => {
    await commit(g1, 'PutMany', [JSON.stringify({ 'sbe:1': 'v0', 'sbe:2': 'w0' })]);
    expect(await evaluate(g1, 'GetKeyPolicy', ['sbe:1'])).toEqual({ policy: '', orgs: [] });
    await commit(g1, 'SetKeyPolicy', ['sbe:1', 'Org1MSP']);
    await commit(g1, 'SetKeyPolicy', ['sbe:2', 'Org1MSP', 'Org2MSP']);
    const p1 = await evaluate<{ policy: string; orgs: string[] }>(g1, 'GetKeyPolicy', ['sbe:1']);
    expect(p1.orgs).toEqual(['Org1MSP']);
    expect(p1.policy).toMatch(/Org1MSP\.peer/);
    const p2 = await evaluate<{ policy: string; orgs: string[] }>(g1, 'GetKeyPolicy', ['sbe:2']);
    expect(p2.orgs).toEqual(['Org1MSP', 'Org2MSP']);
    // Setting a policy did not touch the value.
    expect(await evaluate(g1, 'Get', ['sbe:1'])).toEqual({ value: 'v0', length: 2 });

    // The chaincode's policy (either org) is met by Org2 alone, the key's (Org1) is not.
    const byOrg2 = await submit(g1, 'Put', ['sbe:1', 'by-org2'], { endorsingOrganizations: ['Org2MSP'] });
    expect(byOrg2.code).toBe('ENDORSEMENT_POLICY_FAILURE');
    // submit() of the SDK turns it into a CommitError naming the code.
    const err = await failure(
      cc(g1).submit('Put', { arguments: ['sbe:1', 'again'], endorsingOrganizations: ['Org2MSP'] }),
    );
    expect(err).toBeInstanceOf(CommitError);
    expect(err.code).toBe('ENDORSEMENT_POLICY_FAILURE');
    expect(await evaluate(g1, 'Get', ['sbe:1'])).toEqual({ value: 'v0', length: 2 });
    await commit(g1, 'Put', ['sbe:1', 'by-org1'], { endorsingOrganizations: ['Org1MSP'] });
    expect(await evaluate(g1, 'Get', ['sbe:1'])).toEqual({ value: 'by-org1', length: 7 });

    // AND of both orgs: one is not enough, both are.
    expect((await submit(g1, 'Put', ['sbe:2', 'one'], { endorsingOrganizations: ['Org1MSP'] })).code).toBe(
      'ENDORSEMENT_POLICY_FAILURE',
    );
    await commit(g1, 'Put', ['sbe:2', 'both'], { endorsingOrganizations: ['Org1MSP', 'Org2MSP'] });
    expect(await evaluate(g1, 'Get', ['sbe:2'])).toEqual({ value: 'both', length: 4 });
    // Keys without a key-level policy still follow the chaincode's: Org2 alone is enough.
    await commit(g1, 'Put', ['sbe:free', 'x'], { endorsingOrganizations: ['Org2MSP'] });
  }, 180_000);

  it('private data in Org1+Org2 `shared`: put/get (no read-your-own-writes), hash, delete, purge, on both orgs', async () => {
    const put = await commit(g1, 'PPut', ['shared', 'pk1'], { transientData: { value: 'secret-1' } });
    expect(put.result).toEqual({ before: '', after: '' });
    expect(await evaluate(g1, 'PGet', ['shared', 'pk1'])).toEqual({ value: 'secret-1', length: 8 });
    // Disseminated to Org2's peer, a member of the collection.
    await until('Org2 holds pk1', async () =>
      (await evaluate<{ value: string }>(g2, 'PGet', ['shared', 'pk1'])).value === 'secret-1' ? true : undefined,
    );
    expect(await evaluate(g1, 'PHash', ['shared', 'pk1'])).toEqual({ hash: sha256Hex('secret-1') });
    expect(await evaluate(g2, 'PHash', ['shared', 'pk1'])).toEqual({ hash: sha256Hex('secret-1') });
    const again = await commit(g1, 'PPut', ['shared', 'pk1'], { transientData: { value: 'secret-2' } });
    expect(again.result).toEqual({ before: 'secret-1', after: 'secret-1' });
    expect(await evaluate(g1, 'PGet', ['shared', 'pk1'])).toEqual({ value: 'secret-2', length: 8 });

    const del = await commit(g1, 'PDel', ['shared', 'pk1']);
    expect(del.result).toEqual({ before: 'secret-2', after: 'secret-2' });
    expect(await evaluate(g1, 'PGet', ['shared', 'pk1'])).toEqual({ value: '', length: 0 });
    expect(await evaluate(g1, 'PHash', ['shared', 'pk1'])).toEqual({ hash: '' });

    await commit(g1, 'PPut', ['shared', 'pk2'], { transientData: { value: 'to-purge' } });
    await until('Org2 holds pk2', async () =>
      (await evaluate<{ value: string }>(g2, 'PGet', ['shared', 'pk2'])).value === 'to-purge' ? true : undefined,
    );
    await commit(g1, 'PPurge', ['shared', 'pk2']);
    expect(await evaluate(g1, 'PGet', ['shared', 'pk2'])).toEqual({ value: '', length: 0 });
    expect(await evaluate(g1, 'PHash', ['shared', 'pk2'])).toEqual({ hash: '' });
    await until('Org2 purged pk2', async () =>
      (await evaluate<{ length: number }>(g2, 'PGet', ['shared', 'pk2'])).length === 0 ? true : undefined,
    );

    // Without the transient input the chaincode says so.
    const missing = await failure(cc(g1).evaluate('PPut', { arguments: ['shared', 'pk3'] }));
    expect(missing.message).toMatch(/transient field "value" is missing/);
    // A collection the chaincode does not define.
    const unknown = await failure(cc(g1).evaluate('PGet', { arguments: ['nosuch', 'pk1'] }));
    expect(unknown.code).toBe('COLLECTION_NOT_FOUND');
    expect(unknown.message).toMatch(/nosuch/);
  }, 180_000);

  it('private queries: getPrivateDataByRange, ByPartialCompositeKey, getPrivateDataQueryResult', async () => {
    const doc = (owner: string) => JSON.stringify({ docType: 'thing', owner });
    const seed = {
      'pr:a': 'A',
      'pr:b': 'B',
      'pr:c': 'C',
      'pdoc:1': doc('ann'),
      'pdoc:2': doc('bob'),
      [compositeKey('color', 'red', 'p1')]: 'red-1',
    };
    await commit(g1, 'PSeed', ['shared'], { transientData: { seed: JSON.stringify(seed) } });
    await commit(g1, 'PPutComposite', ['shared', 'color', 'red', 'p2'], { transientData: { value: 'red-2' } });

    expect(await evaluate(g1, 'PRange', ['shared', 'pr:a', 'pr:c'])).toEqual([
      { key: 'pr:a', value: 'A' },
      { key: 'pr:b', value: 'B' },
    ]);
    expect(await evaluate(g1, 'PComposite', ['shared', 'color', 'red'])).toEqual([
      { objectType: 'color', attributes: ['red', 'p1'], value: 'red-1' },
      { objectType: 'color', attributes: ['red', 'p2'], value: 'red-2' },
    ]);
    const q = JSON.stringify({ selector: { docType: 'thing', owner: 'ann' } });
    expect(await evaluate(g1, 'PRich', ['shared', q])).toEqual([{ key: 'pdoc:1', value: doc('ann') }]);
    // The same queries on Org2's peer, once the data reached it.
    await until('Org2 private range', async () =>
      (await evaluate<unknown[]>(g2, 'PRange', ['shared', 'pr:a', 'pr:d'])).length === 3 ? true : undefined,
    );
    expect(await evaluate(g2, 'PRich', ['shared', q])).toEqual([{ key: 'pdoc:1', value: doc('ann') }]);
    // The collection's index shipped in the package was built on both (member) peers.
    for (const fqdn of ['peer0.org1.example.com', 'peer0.org2.example.com']) {
      const log = readFileSync(join(net.dataDir, 'logs', `${fqdn}.log`), 'utf8');
      expect(log, fqdn).toMatch(
        /"chaincode":"stubcheck","index":"META-INF\/statedb\/couchdb\/collections\/shared\/indexes\/indexOwner\.json","msg":"index created"/,
      );
    }
  }, 180_000);

  it('paginated and private-data queries belong to read-only transactions, as in Fabric', async () => {
    for (const kind of ['paged', 'private-range']) {
      for (const order of ['query-first', 'write-first']) {
        const key = `ro:${kind}:${order}`;
        const err = await failure(cc(g1).submit('QueryAndWrite', { arguments: [kind, order, key] }));
        expect(err, `${kind} ${order}`).toBeInstanceOf(EndorseError);
        expect(err.code).toBe('CHAINCODE_ERROR');
        expect(err.message).toMatch(/only supported in a read-only transaction/);
        expect(await evaluate(g1, 'Get', [key])).toEqual({ value: '', length: 0 });
      }
    }
    // An ordinary range query may precede a write.
    await commit(g1, 'QueryAndWrite', ['range', 'query-first', 'ro:range']);
    expect(await evaluate(g1, 'Get', ['ro:range'])).toEqual({ value: 'written', length: 7 });
  }, 120_000);

  it('private key-level policy: set/getPrivateDataValidationParameter', async () => {
    await commit(g1, 'PPut', ['shared', 'pvp'], { transientData: { value: 'guarded' } });
    expect(await evaluate(g1, 'PGetKeyPolicy', ['shared', 'pvp'])).toEqual({ policy: '', orgs: [] });
    await commit(g1, 'PSetKeyPolicy', ['shared', 'pvp', 'Org2MSP']);
    const p = await evaluate<{ policy: string; orgs: string[] }>(g1, 'PGetKeyPolicy', ['shared', 'pvp']);
    expect(p.orgs).toEqual(['Org2MSP']);
    expect(p.policy).toMatch(/Org2MSP\.peer/);
    // Enforced at validation: Org1's endorsement alone no longer updates the key.
    const byOrg1 = await submit(g1, 'PPut', ['shared', 'pvp'], {
      transientData: { value: 'by-org1' },
      endorsingOrganizations: ['Org1MSP'],
    });
    expect(byOrg1.code).toBe('ENDORSEMENT_POLICY_FAILURE');
    expect(await evaluate(g1, 'PGet', ['shared', 'pvp'])).toEqual({ value: 'guarded', length: 7 });
  }, 120_000);

  it("private data in Org1's implicit collection `_implicit_org_Org1MSP`", async () => {
    const coll = '_implicit_org_Org1MSP';
    await commit(g1, 'PPut', [coll, 'ik'], {
      transientData: { value: 'org1-only' },
      endorsingOrganizations: ['Org1MSP'],
    });
    expect(await evaluate(g1, 'PGet', [coll, 'ik'])).toEqual({ value: 'org1-only', length: 9 });
    // Every channel member's peer has the hash; Org2's peer never gets the value.
    await until('Org2 has the hash', async () =>
      (await evaluate<{ hash: string }>(g2, 'PHash', [coll, 'ik'])).hash === sha256Hex('org1-only') ? true : undefined,
    );
    // memberOnlyRead: an Org2 client may not read it.
    const fromOrg2 = await failure(cc(g2).evaluate('PGet', { arguments: [coll, 'ik'] }));
    expect(fromOrg2.code).toBe('PRIVDATA_ACCESS_DENIED');
    expect(fromOrg2.message).toMatch(/memberOnlyRead/);
    expect(fromOrg2.message).not.toContain('org1-only');
    // Org2's peer holds only hashes: a proposal that reads the value cannot run there.
    const readOn2 = await failure(
      cc(g1).submit('PPut', {
        arguments: [coll, 'ik'],
        transientData: { value: 'x' },
        endorsingOrganizations: ['Org2MSP'],
      }),
    );
    expect(readOn2).toBeInstanceOf(EndorseError);
    expect(readOn2.code).toBe('PRIVDATA_NOT_A_MEMBER');
    // A blind write it can endorse, but the implicit collection's endorsement policy is one of
    // Org1's peers: the transaction commits invalid and the value stays.
    const byOrg2 = await submit(g1, 'PWrite', [coll, 'ik'], {
      transientData: { value: 'endorsed-by-org2' },
      endorsingOrganizations: ['Org2MSP'],
    });
    expect(byOrg2.code).toBe('ENDORSEMENT_POLICY_FAILURE');
    expect(await evaluate(g1, 'PGet', [coll, 'ik'])).toEqual({ value: 'org1-only', length: 9 });
    await commit(g1, 'PWrite', [coll, 'ik'], {
      transientData: { value: 'endorsed-by-org1' },
      endorsingOrganizations: ['Org1MSP'],
    });
    expect(await evaluate(g1, 'PGet', [coll, 'ik'])).toEqual({ value: 'endorsed-by-org1', length: 16 });
  }, 120_000);

  it('Shim.success / Shim.error, and an unknown function', async () => {
    // Shim.success's payload reaches the client byte for byte.
    expect(dec.decode(await cc(g1).evaluate('Echo', { arguments: ['raw bytes, not JSON'] }))).toBe(
      'raw bytes, not JSON',
    );
    expect(await cc(g1).evaluate('Echo')).toHaveLength(0);

    const evaluated = await failure(cc(g1).evaluate('Fail', { arguments: ['refused by the chaincode'] }));
    expect(evaluated).toBeInstanceOf(EvaluateError);
    expect(evaluated.code).toBe('CHAINCODE_ERROR');
    expect(evaluated.message).toContain('refused by the chaincode');
    const submitted = await failure(cc(g1).submit('Fail', { arguments: ['no endorsement for you'] }));
    expect(submitted).toBeInstanceOf(EndorseError);
    expect(submitted.code).toBe('CHAINCODE_ERROR');
    expect(submitted.message).toContain('no endorsement for you');
    const unknown = await failure(cc(g1).evaluate('NoSuchFunction'));
    expect(unknown.message).toContain('unknown function "NoSuchFunction"');
  }, 120_000);
});
