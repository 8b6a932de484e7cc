/**
 * Governance by vote on real processes (the launcher's CAs, three Raft orderers, three peers):
 * Org3 has a CA and a peer but is not in the channel. Org1's admin proposes inviting Org3 (its MSP
 * folder, enrolled by Org3's CA), Org1's and Org2's admins vote yes, the approved proposal becomes
 * a config block without anyone submitting it by hand, Org3's peer joins the channel from the
 * genesis block, catches up through that config block, and endorses a transaction. Also: a vote
 * after the deadline is refused, an applied proposal cannot be applied again (neither recorded
 * nor re-ordered), and a rejected proposal is recorded as rejected.
 *
 * Ports: the default network-config's + 10500, Org3 in the same range (17550–19954).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, signers } from '@loom/client';
import { fromBase64 } from '@loom/common';
import { afterAll, describe, expect, it } from 'vitest';
import { httpRequest } from '../../packages/cli/src/network/http.js';
import {
  LaunchedNetwork,
  LOOM,
  peerHeight,
  runLoom as run,
  sleep,
  waitFor,
  withOrg3,
  writeNetworkConfig,
} from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'loom-gov-'));
const OFFSET = 10500;
const dataDir = join(work, 'data');
const ORG3_PEER = `https://127.0.0.1:${9251 + OFFSET}`;
const ORG1_PEER = `https://127.0.0.1:${7051 + OFFSET}`;
const ORG2_PEER = `https://127.0.0.1:${8051 + OFFSET}`;
const ORDERER0 = `https://127.0.0.1:${7050 + OFFSET}`;

/** The default network with Org3 (CA + peer, not in the channel), shifted; `withOrg3` lists it in the channel. */
const config = (name: string, inChannel: boolean): string =>
  writeNetworkConfig(join(work, name), {
    offset: OFFSET,
    dataDir,
    edit: (text) =>
      withOrg3(text, { caPort: 9254, port: 9251, p2pPort: 9351, chaincodePort: 9252, operationsPort: 9446, inChannel }),
  });
const cfg = config('net.yaml', false);
const cfgAfter = config('net-after.yaml', true);
const launched = new LaunchedNetwork(cfg, dataDir);

const gov = (args: string[]) => run(['--json', 'governance', ...args, '--config', cfg]);
const json = <T>(r: { stdout: string; out: string }): T => {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON: ${r.out}`);
  }
};

interface Proposal {
  id: string;
  status: string;
  recordedStatus: string;
  appliedBlock?: number;
  applyEnvelope?: string;
  members: string[];
  tally: { yes: number; no: number };
  summary: string[];
}

const tlsRoots = () =>
  readdirSync(dataDir)
    .map((d) => join(dataDir, d, 'ca', 'data', 'tlsca-cert.pem'))
    .filter((f) => existsSync(f))
    .map((f) => readFileSync(f, 'utf8'));

/** The peer's height of mychannel; -1 while it is not joined. */
const height = async (peer: string): Promise<number> => (await peerHeight(peer, tlsRoots())) ?? -1;

/** The channel's peers (Org3's once it has joined). */
const members = [ORG1_PEER, ORG2_PEER];

/**
 * Waits until every member peer has committed as many blocks as the furthest one has now. Commit
 * status is per peer and each `loom governance` command reads and endorses on its own org's peer,
 * so an org acting on another org's last transaction waits for its peer to have it.
 */
async function syncPeers(timeoutMs = 120_000): Promise<number> {
  const target = Math.max(...(await Promise.all(members.map(height))));
  let heights: number[] = [];
  await waitFor(
    `the peers to reach height ${target}`,
    async () => {
      heights = await Promise.all(members.map(height));
      return heights.every((h) => h >= target);
    },
    { timeoutMs, intervalMs: 250 },
  ).catch((e: Error) => {
    throw new Error(`${e.message} (peers at ${heights.join(', ')})`);
  });
  return target;
}

afterAll(async () => {
  await launched.down(120_000);
  rmSync(work, { recursive: true, force: true });
}, 150_000);

describe.skipIf(!existsSync(LOOM))('governance by vote', () => {
  let invite: Proposal;

  it('brings up a network where Org3 has a CA and a peer outside the channel', async () => {
    const r = await launched.launch(560_000);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/chaincode basic: definition 1\.0 sequence 1 committed on mychannel/);
    expect(r.out).toMatch(/peer0\.org3\.example\.com \(Org3MSP\) ready at .*, in no channel/);
    expect(await height(ORG3_PEER)).toBe(-1); // not joined
    // Org3's CA enrolled its admin and its peer
    expect(existsSync(join(dataDir, 'org3.example.com/users/Admin@org3.example.com/msp/signcerts/cert.pem'))).toBe(
      true,
    );
    expect(existsSync(join(dataDir, 'org3.example.com/peers/peer0.org3.example.com/msp/signcerts/cert.pem'))).toBe(
      true,
    );
  }, 600_000);

  it('Org1 proposes to invite Org3 with its MSP folder and anchor peer', async () => {
    const msp = join(dataDir, 'org3.example.com/users/Admin@org3.example.com/msp');
    const args = ['--invite-org', msp, '--msp-id', 'Org3MSP', '--anchor-peer', `127.0.0.1:${9251 + OFFSET}`];
    const r = await gov(['propose', ...args, '--org', 'Org1MSP', '--duration', '30m', '--description', 'add Org3']);
    expect(r.code, r.out).toBe(0);
    invite = json<Proposal>(r);
    expect(invite).toMatchObject({
      status: 'IN_PROGRESS',
      members: ['Org1MSP', 'Org2MSP'],
      summary: ['invite Org3MSP'],
    });
  }, 240_000);

  it('Org1 and Org2 admins vote yes: approved, applied by the peers, recorded once', async () => {
    const v1 = await gov(['vote', invite.id, 'yes', '--org', 'Org1MSP']);
    expect(v1.code, v1.out).toBe(0);
    expect(json<Proposal>(v1)).toMatchObject({ status: 'IN_PROGRESS', tally: { yes: 1 } });
    // the same org cannot vote twice
    const again = await gov(['vote', invite.id, 'no', '--org', 'Org1MSP']);
    expect(again.code).not.toBe(0);
    expect(again.out).toContain('GOVERNANCE_ALREADY_VOTED');

    await syncPeers();
    const v2 = await gov(['vote', invite.id, 'yes', '--org', 'Org2MSP']);
    expect(v2.code, v2.out).toBe(0);
    const applied = json<Proposal>(v2);
    expect(applied).toMatchObject({ status: 'APPLIED', recordedStatus: 'APPLIED' });
    expect(applied.appliedBlock).toBeGreaterThan(0);
    invite = applied;

    await syncPeers();
    const human = await run(['governance', 'list', '--config', cfg]);
    expect(human.out).toMatch(new RegExp(`${invite.id}\\s+APPLIED\\s+Org1MSP\\s+2/0/2`));
  }, 420_000);

  it('a proposal cannot be applied twice', async () => {
    const r = await gov(['apply', invite.id, '--org', 'Org1MSP']);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('GOVERNANCE_ALREADY_APPLIED');
    // the approved CONFIG_UPDATE envelope itself, sent again, is refused by the orderer (stale sequence)
    const again = await httpRequest(`${ORDERER0}/v1/channels/mychannel/broadcast`, {
      method: 'POST',
      body: fromBase64(invite.applyEnvelope!),
      headers: { 'content-type': 'application/octet-stream' },
      ca: tlsRoots(),
    });
    expect(again.status, again.body.toString()).toBe(409);
    expect(again.body.toString()).toMatch(/CONFIG_(BASE_)?SEQUENCE/);
  }, 240_000);

  it('Org3’s peer joins, catches up through the config block, and endorses', async () => {
    const genesis = readFileSync(join(dataDir, 'channels', 'mychannel.genesis.block'));
    const joined = await httpRequest(`${ORG3_PEER}/v1/channels`, {
      method: 'POST',
      body: genesis,
      headers: { 'content-type': 'application/octet-stream' },
      ca: tlsRoots(),
    });
    expect(joined.status, joined.body.toString()).toBeLessThan(300);
    const target = await height(ORG1_PEER);
    expect(target).toBeGreaterThan(invite.appliedBlock!);
    const end = Date.now() + 120_000;
    while (Date.now() < end && (await height(ORG3_PEER)) < target) await sleep(500);
    expect(await height(ORG3_PEER)).toBeGreaterThanOrEqual(target);
    members.push(ORG3_PEER);

    // Org3 installs basic and approves the committed definition (the network-config now lists Org3)
    const dep = await run(['chaincode', 'deploy', '-n', 'basic', '--config', cfgAfter], 180_000);
    expect(dep.code, dep.out).toBe(0);
    expect(dep.out).toMatch(/installed on peer0\.org3\.example\.com/);
    const appr = await run(
      ['chaincode', 'approve', '-n', 'basic', '-C', 'mychannel', '--org', 'Org3MSP', '--config', cfgAfter],
      120_000,
    );
    expect(appr.code, appr.out).toBe(0);

    // A transaction endorsed by Org3's peer (and Org1's, for MAJORITY of three) commits VALID.
    const user = join(dataDir, 'org3.example.com/users/User1@org3.example.com/msp');
    const keyDir = join(user, 'keystore');
    const g = connect({
      endpoint: ORG3_PEER,
      identity: { mspId: 'Org3MSP', credentials: readFileSync(join(user, 'signcerts', 'cert.pem')) },
      signer: signers.newPrivateKeySigner(readFileSync(join(keyDir, readdirSync(keyDir)[0]!), 'utf8')),
      tls: { rootCerts: tlsRoots() },
      endorseOptions: { timeoutMs: 60_000 },
      commitStatusOptions: { timeoutMs: 60_000 },
    });
    try {
      const contract = g.getNetwork('mychannel').getContract('basic');
      let committed = false;
      for (let i = 0; i < 20 && !committed; i++) {
        try {
          const tx = await contract.submitAsync('CreateAsset', {
            arguments: ['gov-asset', 'green', '3', 'Org3', '42'],
            endorsingOrganizations: ['Org3MSP', 'Org1MSP'],
          });
          const status = await tx.getStatus();
          expect(status.successful).toBe(true);
          committed = true;
        } catch (e) {
          // Org3's approval may still be on its way to its registry
          if (i === 19) throw e;
          await sleep(1000);
        }
      }
      const read = new TextDecoder().decode(await contract.evaluateTransaction('ReadAsset', 'gov-asset'));
      expect(read).toContain('"Owner":"Org3"');
    } finally {
      g.close();
    }
  }, 480_000);

  it('a vote after the deadline is refused; the expiry is recorded', async () => {
    const r = await gov(['propose', '--remove-org', 'Org2MSP', '--org', 'Org1MSP', '--duration', '2s']);
    expect(r.code, r.out).toBe(0);
    const p = json<Proposal>(r);
    expect(p.members).toEqual(['Org1MSP', 'Org2MSP', 'Org3MSP']);
    // The deadline is 2 s after the proposing transaction's timestamp (taken before it was sent).
    await sleep(3000);
    await syncPeers();
    const late = await gov(['vote', p.id, 'yes', '--org', 'Org3MSP']);
    expect(late.code).not.toBe(0);
    expect(late.out).toContain('GOVERNANCE_VOTE_AFTER_DEADLINE');
    await syncPeers();
    const expired = await gov(['expire', p.id, '--org', 'Org2MSP']);
    expect(expired.code, expired.out).toBe(0);
    expect(json<Proposal>(expired)).toMatchObject({ status: 'EXPIRED', recordedStatus: 'EXPIRED', tally: { yes: 0 } });
  }, 300_000);

  it('a rejected proposal is recorded as rejected', async () => {
    const r = await gov(['propose', '--set', 'batch.maxMessageCount=10', '--org', 'Org3MSP', '--duration', '30m']);
    expect(r.code, r.out).toBe(0);
    const p = json<Proposal>(r);
    await syncPeers();
    expect((await gov(['vote', p.id, 'no', '--org', 'Org1MSP'])).code).toBe(0);
    await syncPeers();
    const v = await gov(['vote', p.id, 'no', '--org', 'Org2MSP']);
    expect(v.code, v.out).toBe(0);
    expect(json<Proposal>(v)).toMatchObject({ status: 'REJECTED', recordedStatus: 'REJECTED', tally: { no: 2 } });
    await syncPeers();
    const list = json<Proposal[]>(await gov(['list']));
    expect(list.map((x) => x.status)).toEqual(['APPLIED', 'EXPIRED', 'REJECTED']);
  }, 360_000);
});
