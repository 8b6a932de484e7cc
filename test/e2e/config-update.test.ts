/**
 * Channel config updates on real processes, through the real CLI binary (`loom channel config
 * fetch|diff|compute-update|sign|update`): a detached network (3 CAs, 3 Raft orderers plus a 4th
 * orderer process that is not yet a consenter, 2 peers, `basic` deployed) on its own ports
 * (default + 8000, or LOOM_CFGUPD_PORT_OFFSET) and data directory.
 *
 *   1. a batch change signed by an application admin only is refused naming /Channel/Orderer/Admins;
 *      signed by the orderer admin it is accepted, and the following blocks hold ≤ maxMessageCount;
 *   2. orderer3 is added as a consenter through config, joins with the latest config block through
 *      the participation API, catches up and replicates new blocks;
 *   3. removing Org2 signed by Org1's admin alone is refused naming /Channel/Admins (MAJORITY); with
 *      Org2's admin too it is accepted, and from the next block Org2's client is refused by every
 *      orderer's broadcast and by Org1's peer gateway, while Org1's client still transacts;
 *   4. a consenter is removed through config: it stops receiving blocks, the others keep ordering.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Block,
  type ChannelConfig,
  computeTxId,
  decodeBlock,
  decodeBlockHeader,
  decodeConfigEnvelopeFromBlock,
  encodeChannelHeader,
  encodeEnvelope,
  encodeHeader,
  encodePayload,
  encodeSeekInfo,
  encodeSerializedIdentity,
  encodeSignatureHeader,
  HeaderType,
  privateKeyFromPem,
  sign,
} from '@loom/common';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { httpRequest } from '../../packages/cli/src/network/http.js';
import {
  LaunchedNetwork,
  LOOM,
  peerHeight as heightAt,
  runLoom,
  sleep,
  waitFor,
  writeNetworkConfig,
} from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'loom-cfgupd-'));
// LOOM_CFGUPD_PORT_OFFSET moves the network elsewhere (e.g. when other networks run beside it).
const OFFSET = Number(process.env.LOOM_CFGUPD_PORT_OFFSET ?? 8000);
const dataDir = join(work, 'data');
const CHANNEL = 'mychannel';

/** The default network-config moved by OFFSET, with a 4th orderer process that no channel names yet. */
function networkConfig(): string {
  return writeNetworkConfig(join(work, 'network.yaml'), {
    offset: OFFSET,
    dataDir,
    edit: (text) => {
      const added = text.replace(
        /( {4}- name: orderer2\n(?: {6}.*\n)+)/,
        (m) =>
          `${m}    - name: orderer3\n      host: 127.0.0.1\n      port: 7060\n      adminPort: 7063\n      raftPort: 7160\n      operationsPort: 9446\n`,
      );
      if (!added.includes('orderer3')) throw new Error('could not add orderer3 to the network-config');
      return added;
    },
  });
}

const ORDERERS = {
  orderer0: { port: 7050 + OFFSET, admin: 7053 + OFFSET },
  orderer1: { port: 8050 + OFFSET, admin: 8053 + OFFSET },
  orderer2: { port: 9050 + OFFSET, admin: 9053 + OFFSET },
  orderer3: { port: 7060 + OFFSET, admin: 7063 + OFFSET },
} as const;
type OrdererName = keyof typeof ORDERERS;
const ORG1_PEER = `https://127.0.0.1:${7051 + OFFSET}`;

const run = (args: string[], timeoutMs = 240_000) => runLoom(args, timeoutMs, work);

const until = <T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 180_000): Promise<T> =>
  waitFor(what, f, { timeoutMs, intervalMs: 300 });

interface Id {
  mspId: string;
  certPem: string;
  keyPem: string;
}

function identity(domain: string, mspId: string, user: string): Id {
  const msp = join(dataDir, domain, 'users', `${user}@${domain}`, 'msp');
  const key = readdirSync(join(msp, 'keystore'))[0]!;
  return {
    mspId,
    certPem: readFileSync(join(msp, 'signcerts', 'cert.pem'), 'utf8'),
    keyPem: readFileSync(join(msp, 'keystore', key), 'utf8'),
  };
}

function tlsRoots(): string[] {
  return ['org1.example.com', 'org2.example.com', 'example.com'].map((d) =>
    readFileSync(join(dataDir, d, 'ca', 'data', 'tlsca-cert.pem'), 'utf8'),
  );
}

function envelope(id: Id, type: HeaderType, data: Uint8Array): Uint8Array {
  const creator = encodeSerializedIdentity({ mspId: id.mspId, idBytes: new TextEncoder().encode(id.certPem) });
  const nonce = randomBytes(24);
  const payload = encodePayload({
    header: encodeHeader({
      channelHeader: encodeChannelHeader({
        type,
        version: 1,
        channelId: CHANNEL,
        txId: computeTxId(nonce, creator),
        timestamp: Date.now(),
        extension: new Uint8Array(0),
      }),
      signatureHeader: encodeSignatureHeader({ creator, nonce }),
    }),
    data,
  });
  return encodeEnvelope({ payload, signature: sign(privateKeyFromPem(id.keyPem), payload) });
}

async function broadcast(o: OrdererName, id: Id, text: string) {
  const r = await httpRequest(`https://127.0.0.1:${ORDERERS[o].port}/v1/channels/${CHANNEL}/broadcast`, {
    method: 'POST',
    body: envelope(id, HeaderType.MESSAGE, new TextEncoder().encode(text)),
    headers: { 'content-type': 'application/octet-stream' },
    ca: tlsRoots(),
    timeoutMs: 30_000,
  });
  const body = r.body.toString();
  return {
    status: r.status,
    body,
    json: (() => {
      try {
        return JSON.parse(body) as Record<string, unknown>;
      } catch {
        return {};
      }
    })(),
  };
}

/** Broadcasts, retrying while the orderer answers 503 (no leader yet). */
async function broadcastOk(o: OrdererName, id: Id, text: string): Promise<number> {
  return until(`${o} to order '${text}'`, async () => {
    const r = await broadcast(o, id, text);
    if (r.status === 200) return r.json.blockNumber as number;
    if (r.status === 503) return undefined;
    throw new Error(`broadcast to ${o}: HTTP ${r.status} ${r.body}`);
  });
}

async function blocks(o: OrdererName, id: Id, start: number, stop: number): Promise<Block[]> {
  const seek = envelope(
    id,
    HeaderType.DELIVER_SEEK_INFO,
    encodeSeekInfo({
      start: { kind: 'specified', number: start },
      stop: { kind: 'specified', number: stop },
      behavior: 'FAIL_IF_NOT_READY',
    }),
  );
  const r = await httpRequest(`https://127.0.0.1:${ORDERERS[o].port}/v1/channels/${CHANNEL}/deliver`, {
    method: 'POST',
    body: seek,
    headers: { 'content-type': 'application/octet-stream' },
    ca: tlsRoots(),
    timeoutMs: 20_000,
  });
  if (r.status !== 200) throw new Error(`deliver from ${o}: HTTP ${r.status} ${r.body.toString()}`);
  const out: Block[] = [];
  let off = 0;
  while (off + 4 <= r.body.length) {
    const n = r.body.readUInt32BE(off);
    out.push(decodeBlock(new Uint8Array(r.body.subarray(off + 4, off + 4 + n))));
    off += 4 + n;
  }
  return out;
}

async function channelInfo(o: OrdererName): Promise<{ height: number; leader: string; status: string } | undefined> {
  try {
    const r = await httpRequest(`https://127.0.0.1:${ORDERERS[o].admin}/participation/v1/channels/${CHANNEL}`, {
      ca: tlsRoots(),
      timeoutMs: 5_000,
    });
    return r.status === 200
      ? (JSON.parse(r.body.toString()) as { height: number; leader: string; status: string })
      : undefined;
  } catch {
    return undefined;
  }
}

async function peerHeight(url: string): Promise<number> {
  return (await heightAt(url, tlsRoots(), { channel: CHANNEL, timeoutMs: 5_000 })) ?? -1;
}

let config = '';
let launched: LaunchedNetwork | undefined;

afterAll(async () => {
  await launched?.down(200_000);
  rmSync(work, { recursive: true, force: true });
}, 240_000);

/** fetch → edit → (diff) → compute-update, all through the CLI; returns the update file and the changes printed. */
async function prepareUpdate(
  name: string,
  editFn: (c: ChannelConfig) => void,
  withDiff = false,
): Promise<{ file: string; diff: string }> {
  const orig = join(work, `${name}.orig.yaml`);
  const fetched = await run(['channel', 'config', 'fetch', '--config', config, '-o', orig]);
  expect(fetched.code, fetched.out).toBe(0);
  const c = parseYaml(readFileSync(orig, 'utf8')) as ChannelConfig;
  editFn(c);
  const edited = join(work, `${name}.edited.yaml`);
  writeFileSync(edited, toYaml(c));
  let diff = '';
  if (withDiff) {
    const d = await run(['channel', 'config', 'diff', orig, edited]);
    expect(d.code, d.out).toBe(0);
    diff = d.out;
  }
  const file = join(work, `${name}.update.yaml`);
  const made = await run(['channel', 'config', 'compute-update', orig, edited, '-o', file]);
  expect(made.code, made.out).toBe(0);
  step(`${name}: ${made.out.trim()}`);
  return { file, diff: withDiff ? diff : made.out };
}

const t0 = Date.now();
function step(what: string): void {
  console.log(`[config-update e2e ${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}`);
}

async function signAs(file: string, org: string) {
  const r = await run(['channel', 'config', 'sign', file, '--config', config, '--org', org, '--user', 'Admin']);
  expect(r.code, r.out).toBe(0);
  step(r.out.trim());
  return r.out;
}

async function submit(file: string, orderer: OrdererName = 'orderer0') {
  const r = await run([
    'channel',
    'config',
    'update',
    file,
    '--config',
    config,
    '--org',
    'Org1MSP',
    '--orderer',
    `https://127.0.0.1:${ORDERERS[orderer].port}`,
  ]);
  step(`update via ${orderer}: exit ${r.code}: ${r.out.trim().slice(0, 400)}`);
  return r;
}

describe.skipIf(!existsSync(LOOM))('channel config updates on a running network', () => {
  it('network up with a spare orderer process', async () => {
    config = networkConfig();
    launched = new LaunchedNetwork(config, dataDir, work);
    const r = await launched.launch(500_000);
    step(`network up: exit ${r.code}`);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain("network 'loom' is up");
    // orderer3 runs but is no member of the channel yet.
    expect(await channelInfo('orderer3')).toBeUndefined();
  }, 600_000);

  it('fetch prints the config as YAML; a batch change short of signatures is refused naming the policy; signed by the orderer admin it takes effect from the next block', async () => {
    const fetched = await run(['channel', 'config', 'fetch', '--config', config]);
    expect(fetched.code, fetched.out).toBe(0);
    const cfg = parseYaml(fetched.out) as ChannelConfig;
    expect(cfg.orderer.batch.maxMessageCount).toBe(500);
    expect(cfg.orderer.consenters.map((c) => c.id)).toEqual(['orderer0', 'orderer1', 'orderer2']);
    expect(fetched.out).toContain('-----BEGIN CERTIFICATE-----');

    const { file, diff } = await prepareUpdate(
      'batch',
      (c) => {
        c.orderer.batch.maxMessageCount = 2;
        c.orderer.batch.batchTimeoutMs = 1500;
      },
      true,
    );
    expect(diff).toContain('modified orderer');
    expect(diff).toContain('batch.maxMessageCount: 500 → 2');
    expect(diff).toContain('/Channel/Orderer/Admins');

    await signAs(file, 'Org1MSP');
    const short = await submit(file);
    expect(short.code).not.toBe(0);
    expect(short.out).toContain('CONFIG_POLICY_UNSATISFIED');
    expect(short.out).toContain('/Channel/Orderer/Admins');

    await signAs(file, 'OrdererMSP');
    const signed = parseYaml(readFileSync(file, 'utf8')) as { signatures: { signer: string }[]; configUpdate: string };
    expect(signed.signatures.map((s) => s.signer)).toEqual([
      'Admin@org1.example.com (Org1MSP)',
      'Admin@example.com (OrdererMSP)',
    ]);
    expect(signed.configUpdate).toMatch(/^[A-Za-z0-9+/]+=*$/);
    const ok = await submit(file);
    expect(ok.code, ok.out).toBe(0);
    const configBlock = Number(/from block (\d+)/.exec(ok.out)?.[1]);
    expect(configBlock).toBeGreaterThan(0);

    // Submitting the same update again: its base sequence is gone.
    const again = await submit(file);
    expect(again.code).not.toBe(0);
    expect(again.out).toMatch(/SEQUENCE/);

    // Seven messages at once: with maxMessageCount 2 they need at least four blocks of at most 2.
    const client = identity('org1.example.com', 'Org1MSP', 'User1');
    const at = await Promise.all([...Array(7).keys()].map((i) => broadcastOk('orderer1', client, `batch-${i}`)));
    const first = Math.min(...at);
    const last = Math.max(...at);
    expect(first).toBeGreaterThan(configBlock);
    const got = await blocks('orderer1', client, first, last);
    const sizes = got.map((b) => b.data.length);
    expect(Math.max(...sizes), `block sizes ${sizes}`).toBeLessThanOrEqual(2);
    expect(new Set(at).size).toBeGreaterThanOrEqual(4);
    // The config block in force says so too.
    const cfgBlock = (await blocks('orderer2', client, configBlock, configBlock))[0]!;
    expect(decodeConfigEnvelopeFromBlock(cfgBlock)?.orderer.batch.maxMessageCount).toBe(2);
  }, 900_000);

  it('a consenter is added through config: orderer3 joins with the latest config block, catches up and replicates', async () => {
    const ordererDir = join(dataDir, 'example.com', 'orderers', 'orderer3.example.com');
    const identityCert = readFileSync(join(ordererDir, 'msp', 'signcerts', 'cert.pem'), 'utf8');
    const tlsCert = readFileSync(join(ordererDir, 'tls', 'server.crt'), 'utf8');
    const { file, diff } = await prepareUpdate('add-orderer3', (c) => {
      c.orderer.consenters.push({
        id: 'orderer3',
        mspId: 'OrdererMSP',
        host: '127.0.0.1',
        port: ORDERERS.orderer3.port,
        raftPort: 7160 + OFFSET,
        identityCert,
        tlsCert,
      });
    });
    expect(diff).toContain('consenters: + orderer3');
    await signAs(file, 'OrdererMSP');
    const ok = await submit(file, 'orderer1');
    expect(ok.code, ok.out).toBe(0);

    const blockFile = join(work, 'latest-config.block');
    const fetched = await run([
      'channel',
      'config',
      'fetch',
      '--config',
      config,
      '--block',
      blockFile,
      '-o',
      join(work, 'now.json'),
    ]);
    expect(fetched.code, fetched.out).toBe(0);
    const now = JSON.parse(readFileSync(join(work, 'now.json'), 'utf8')) as ChannelConfig;
    expect(now.orderer.consenters.map((c) => c.id)).toContain('orderer3');
    const join3 = await httpRequest(`https://127.0.0.1:${ORDERERS.orderer3.admin}/participation/v1/channels`, {
      method: 'POST',
      body: readFileSync(blockFile),
      headers: { 'content-type': 'application/octet-stream' },
      ca: tlsRoots(),
    });
    expect(join3.status, join3.body.toString()).toBe(201);

    const client = identity('org1.example.com', 'Org1MSP', 'User1');
    const n = await broadcastOk('orderer0', client, 'after-orderer3');
    await until(
      'orderer3 to replicate the new block',
      async () => {
        const i = await channelInfo('orderer3');
        return i && i.height > n ? i : undefined;
      },
      240_000,
    );
    // Its copy of the chain equals the others' (same headers).
    const mine = await blocks('orderer3', client, 0, n);
    const theirs = await blocks('orderer1', client, 0, n);
    expect(mine.map((b) => Buffer.from(b.header).toString('hex'))).toEqual(
      theirs.map((b) => Buffer.from(b.header).toString('hex')),
    );
    expect((await channelInfo('orderer3'))?.status).toBe('active');
  }, 900_000);

  it("removing an org: one admin of two is refused naming MAJORITY Admins; once accepted, the org's client is rejected by every node from the next block", async () => {
    const { file, diff } = await prepareUpdate(
      'remove-org2',
      (c) => {
        delete c.orgs.Org2MSP;
      },
      true,
    );
    expect(diff).toContain('removed orgs.Org2MSP');
    expect(diff).toContain('/Channel/Admins');
    await signAs(file, 'Org1MSP');
    const short = await submit(file);
    expect(short.code).not.toBe(0);
    expect(short.out).toContain('CONFIG_POLICY_UNSATISFIED');
    expect(short.out).toContain('/Channel/Admins');
    expect(short.out).toMatch(/MAJORITY Admins needs 2 of 2/);

    const org2 = identity('org2.example.com', 'Org2MSP', 'User1');
    // Before: Org2's client may write.
    await broadcastOk('orderer2', org2, 'org2-before');

    await signAs(file, 'Org2MSP');
    const ok = await submit(file);
    expect(ok.code, ok.out).toBe(0);
    const configBlock = Number(/from block (\d+)/.exec(ok.out)?.[1]);

    for (const o of ['orderer0', 'orderer1', 'orderer2', 'orderer3'] as const) {
      await until(`${o} to apply block ${configBlock}`, async () => {
        const i = await channelInfo(o);
        return i && i.height > configBlock ? i : undefined;
      });
      const r = await broadcast(o, org2, `org2-after-${o}`);
      expect(r.status, `${o}: ${r.body}`).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(r.body).toMatch(/MSP_UNKNOWN|unknown MSP/);
    }
    await until('Org1 peer to commit the config block', async () =>
      (await peerHeight(ORG1_PEER)) > configBlock ? true : undefined,
    );
    const q = await run([
      'chaincode',
      'query',
      '--config',
      config,
      '--org',
      'Org2MSP',
      '--user',
      'User1',
      '--peer',
      ORG1_PEER,
      '-n',
      'basic',
      '-c',
      '{"function":"GetAllAssets","Args":[]}',
    ]);
    expect(q.code, q.out).not.toBe(0);
    expect(q.out).toMatch(/MSP_UNKNOWN|unknown MSP|Org2MSP/);
    const inv = await run([
      'chaincode',
      'invoke',
      '--config',
      config,
      '--org',
      'Org2MSP',
      '--user',
      'User1',
      '--peer',
      ORG1_PEER,
      '-n',
      'basic',
      '-c',
      '{"function":"CreateAsset","Args":["x2","red","1","Org2","1"]}',
    ]);
    expect(inv.code, inv.out).not.toBe(0);
    // Org1's client still transacts on its own.
    const mine = await run(
      [
        'chaincode',
        'invoke',
        '--config',
        config,
        '--org',
        'Org1MSP',
        '-n',
        'basic',
        '-c',
        '{"function":"CreateAsset","Args":["x1","blue","1","Org1","1"]}',
      ],
      240_000,
    );
    expect(mine.code, mine.out).toBe(0);
    expect(mine.out).toContain('VALID');
  }, 900_000);

  it('a consenter is removed through config: it stops receiving blocks, the rest keep ordering', async () => {
    const client = identity('org1.example.com', 'Org1MSP', 'User1');
    const info = await until('a leader', async () => {
      const i = await channelInfo('orderer0');
      return i?.leader ? i : undefined;
    });
    // Remove a follower (not orderer3, which we just added, and not the leader).
    const victim = (['orderer1', 'orderer2', 'orderer0'] as const).find((o) => o !== info.leader)!;
    const via = (['orderer0', 'orderer1', 'orderer2', 'orderer3'] as const).find((o) => o !== victim)!;
    const { file, diff } = await prepareUpdate('remove-consenter', (c) => {
      c.orderer.consenters = c.orderer.consenters.filter((x) => x.id !== victim);
    });
    expect(diff).toContain(`consenters: - ${victim}`);
    await signAs(file, 'OrdererMSP');
    const ok = await submit(file, via);
    expect(ok.code, ok.out).toBe(0);
    const configBlock = Number(/from block (\d+)/.exec(ok.out)?.[1]);
    // Give Raft a moment to apply the membership change, then order more.
    await until(
      `${victim} removed from the Raft group`,
      async () => {
        await broadcastOk(via, client, `probe-${Date.now()}`);
        const v = await channelInfo(victim);
        const w = await channelInfo(via);
        return v && w && w.height > v.height + 1 ? true : undefined;
      },
      240_000,
    );
    const frozen = (await channelInfo(victim))!.height;
    expect(frozen).toBeGreaterThan(configBlock);
    let last = 0;
    for (let i = 0; i < 3; i++) last = await broadcastOk(via, client, `after-removal-${i}`);
    await sleep(1500);
    expect((await channelInfo(victim))!.height, `${victim} must not receive new blocks`).toBe(frozen);
    for (const o of (['orderer0', 'orderer1', 'orderer2', 'orderer3'] as const).filter((x) => x !== victim)) {
      await until(`${o} to reach block ${last}`, async () => {
        const i = await channelInfo(o);
        return i && i.height > last ? true : undefined;
      });
    }
    const tail = await blocks(via, client, last, last);
    expect(decodeBlockHeader(tail[0]!.header).number).toBe(last);
  }, 900_000);
});
