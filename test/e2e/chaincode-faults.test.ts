/**
 * Chaincode failures through the whole stack (#6): a launched network (`loom network up --detach`:
 * CAs, 3 Raft orderers, 2 peer processes) with the fault-injecting chaincode `chaincode/faulty`
 * deployed next to `basic`. Each failure — a chaincode process that exits mid-transaction, one that
 * loops forever (only the peer's execute timeout ends it), one that throws — is invoked through the
 * client SDK against a real peer's gateway. The client must get a clear error with a code and the
 * transaction id; the peer must stay up and keep serving: the runtime starts a new chaincode process
 * (another pid), and ordinary transactions of the same chaincode and of `basic` still commit.
 *
 * Ports: the default network-config's minus 4000 (3050–5454).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EndorseError, EvaluateError, type Gateway } from '@loom/client';
import { loadNetworkConfig, type NetworkConfig } from '@loom/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayFor, networkTlsRoots } from '../../packages/cli/src/network/gateway.js';
import { httpRequest } from '../../packages/cli/src/network/http.js';
import { operationsUrl } from '../../packages/cli/src/network/up.js';
import {
  chaincodeYaml,
  gatewayFailure,
  LaunchedNetwork,
  LOOM,
  parseResult as result,
  ROOT,
  sleep,
  writeNetworkConfig,
} from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'loom-ccfaults-'));
const OFFSET = -4000;

/** The default network-config, ports − 4000, data in `work`, plus `faulty` (any one org endorses). */
const config = writeNetworkConfig(join(work, 'net.yaml'), {
  offset: OFFSET,
  dataDir: join(work, 'data'),
  finish: (text) =>
    `${text.trimEnd()}\n${chaincodeYaml({
      name: 'faulty',
      path: join(ROOT, 'chaincode/faulty'),
      endorsementPolicy: "OR('Org1MSP.peer', 'Org2MSP.peer')",
    })}`,
});
const launched = new LaunchedNetwork(config, join(work, 'data'));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether process `pid` is gone within 10 s (it may take a moment to be reaped). */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(100);
  return !alive(pid);
}

const failure = gatewayFailure;

let net: NetworkConfig;
let gateway: Gateway;

const faulty = () => gateway.getNetwork('mychannel').getContract('faulty');
const basic = () => gateway.getNetwork('mychannel').getContract('basic');
const pidOfChaincode = async () => Number(result(await faulty().evaluateTransaction('Pid')));
const peerPids = () =>
  (JSON.parse(readFileSync(join(net.dataDir, 'pids.json'), 'utf8')) as { kind: string; name: string; pid: number }[])
    .filter((p) => p.kind === 'peer')
    .map((p) => p.pid);

/** The peer still answers and still commits: an ordinary write of `faulty` and one of `basic`. */
async function peerStillServes(tag: string): Promise<void> {
  const org1 = net.organizations[0]!.peers[0]!;
  // The launcher serves operations over TLS (tls.operations): trust the network's TLS roots.
  const health = await httpRequest(`${operationsUrl(net, org1)}/healthz`, {
    ca: await networkTlsRoots(net),
    timeoutMs: 10_000,
  });
  expect(health.status).toBe(200);
  expect(peerPids().every(alive)).toBe(true);
  await faulty().submitTransaction('Put', `k-${tag}`, `v-${tag}`);
  expect(result(await faulty().evaluateTransaction('Get', `k-${tag}`))).toBe(`v-${tag}`);
  await basic().submitTransaction('CreateAsset', `asset-${tag}`, 'blue', '5', 'Tom', '300');
  expect(result(await basic().evaluateTransaction('ReadAsset', `asset-${tag}`))).toMatchObject({
    ID: `asset-${tag}`,
    Owner: 'Tom',
  });
}

beforeAll(async () => {
  net = await loadNetworkConfig(config);
  const r = await launched.up(330_000);
  expect(r.out).toMatch(/chaincode faulty: definition 1\.0 sequence 1 committed on mychannel/);
  gateway = await gatewayFor(net, net.organizations[0]!, 'User1');
}, 360_000);

afterAll(async () => {
  gateway?.close();
  await launched.down(60_000);
  rmSync(work, { recursive: true, force: true });
}, 90_000);

describe.skipIf(!existsSync(LOOM))('chaincode faults through a real peer', () => {
  it('a chaincode that throws: CHAINCODE_ERROR with its message on submit and evaluate', async () => {
    const submitted = await failure(() => faulty().submitTransaction('Throw', 'asset register is closed'));
    expect(submitted).toBeInstanceOf(EndorseError);
    expect(submitted.code).toBe('CHAINCODE_ERROR');
    expect(submitted.message).toContain('asset register is closed');
    expect(submitted.transactionId).toMatch(/^[0-9a-f]{64}$/);
    expect(submitted.endorsers.length).toBeGreaterThan(0);
    expect(submitted.endorsers[0]).toMatchObject({ code: 'CHAINCODE_ERROR' });

    const evaluated = await failure(() => faulty().evaluateTransaction('Throw', 'no reads today'));
    expect(evaluated).toBeInstanceOf(EvaluateError);
    expect(evaluated.code).toBe('CHAINCODE_ERROR');
    expect(evaluated.message).toContain('no reads today');

    await peerStillServes('after-throw');
  }, 120_000);

  it('a chaincode process that exits mid-transaction: CHAINCODE_CRASHED, then a new process serves', async () => {
    const before = await pidOfChaincode();
    expect(alive(before)).toBe(true);
    const err = await failure(() => faulty().submitTransaction('Crash', '7'));
    expect(err).toBeInstanceOf(EndorseError);
    expect(err.code).toBe('CHAINCODE_CRASHED');
    expect(err.message).toMatch(/faulty/);
    expect(err.transactionId).toMatch(/^[0-9a-f]{64}$/);
    expect(await gone(before)).toBe(true);

    const after = await pidOfChaincode();
    expect(after).not.toBe(before);
    expect(alive(after)).toBe(true);
    await peerStillServes('after-crash');

    // The crashed transaction left nothing behind; a second crash is handled the same way.
    const again = await failure(() => faulty().evaluateTransaction('Crash', '9'));
    expect(again).toBeInstanceOf(EvaluateError);
    expect(again.code).toBe('CHAINCODE_CRASHED');
    expect(await pidOfChaincode()).not.toBe(after);
  }, 120_000);

  it('a chaincode that never returns: CHAINCODE_TIMEOUT after the execute timeout, the process is replaced', async () => {
    const before = await pidOfChaincode();
    const t0 = Date.now();
    const err = await failure(() => faulty().submitTransaction('Loop'));
    const waited = Date.now() - t0;
    expect(err).toBeInstanceOf(EndorseError);
    expect(err.code).toBe('CHAINCODE_TIMEOUT');
    expect(err.transactionId).toMatch(/^[0-9a-f]{64}$/);
    // The peer's default execute timeout is 30 s: the client was not answered before it.
    expect(waited).toBeGreaterThanOrEqual(29_000);
    // The spinning process was killed, not left to burn a core.
    expect(await gone(before)).toBe(true);

    const after = await pidOfChaincode();
    expect(after).not.toBe(before);
    await peerStillServes('after-loop');
  }, 150_000);
});
