/**
 * Chaincode dependencies and approvals through real peer processes (#6). `loom network up --detach`
 * (CAs, 3 Raft orderers, a peer of Org1 and of Org2) deploys a test chaincode written here whose
 * package.json depends on `yaml` (a real npm package, at the version the workspace has, so npm
 * installs it from its cache) and on `@loom/chaincode-sdk` (linked to the peer's own): each peer runs
 * `npm install` at install time, the orgs approve — each approval endorsed by its own org's peer —
 * and the definition is committed. Then:
 *
 * - the chaincode's functions that use `yaml` return what `yaml` computes;
 * - a package whose dependency does not exist fails to install with a clear error (HTTP 400,
 *   CHAINCODE_INSTALL_FAILED, npm's output), is not recorded, and the peer keeps serving;
 * - an approval is endorsed by a peer of the approving org even when the client asks another org's
 *   peer, and a peer refuses to endorse another org's approval.
 *
 * Ports: the default network-config's + 54000 (61050–63451), data in a temp dir.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gateway } from '@loom/client';
import { LoomError, loadNetworkConfig, type NetworkConfig } from '@loom/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPackage } from '../../packages/peer/src/chaincode/package/package-dir.js';
import { installOnPeer, queryInstalled } from '../../packages/cli/src/network/deploy.js';
import { findOrg, networkTlsRoots, peerUrl } from '../../packages/cli/src/network/gateway.js';
import { Gateways, LaunchedNetwork, parseResult as result, ROOT, sleep, writeNetworkConfig } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'loom-ccdeps-'));
const OFFSET = 54_000;
const CHANNEL = 'mychannel';
const CC = 'yamlcc';
const ccDir = join(work, CC);
const dec = new TextDecoder();
const yamlVersion = (
  JSON.parse(readFileSync(join(ROOT, 'node_modules/yaml/package.json'), 'utf8')) as { version: string }
).version;

/** A plain-JavaScript chaincode (no build) that needs `yaml` at run time. */
function writeChaincode(dir: string, dependencies: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'yamlcc', version: '1.0.0', type: 'module', main: 'index.js', dependencies }, null, 2),
  );
  writeFileSync(
    join(dir, 'index.js'),
    `import { Contract } from '@loom/chaincode-sdk';
import YAML from 'yaml';

export class YamlContract extends Contract {
  constructor() {
    super('YamlContract');
  }
  async ToYaml(ctx, json) {
    return YAML.stringify(JSON.parse(json));
  }
  async PutYaml(ctx, key, json) {
    await ctx.stub.putState(key, Buffer.from(YAML.stringify(JSON.parse(json))));
  }
  async GetAsJson(ctx, key) {
    const b = await ctx.stub.getState(key);
    return JSON.stringify(YAML.parse(Buffer.from(b).toString('utf8')));
  }
  async YamlVersion(ctx) {
    return YAML.stringify({ parsed: YAML.parse('a: 1') });
  }
}

export const contracts = [YamlContract];
`,
  );
}

const launched = new LaunchedNetwork(
  writeNetworkConfig(join(work, 'net.yaml'), {
    offset: OFFSET,
    dataDir: join(work, 'data'),
    name: 'loomdeps',
    chaincodes: [{ name: CC, path: ccDir, channel: CHANNEL, endorsementPolicy: "OR('Org1MSP.peer', 'Org2MSP.peer')" }],
  }),
  join(work, 'data'),
);

let net: NetworkConfig;
let tlsRoots: string[];
const gateways = new Gateways();
let deployOut = '';

beforeAll(async () => {
  writeChaincode(ccDir, { yaml: yamlVersion, '@loom/chaincode-sdk': '*' });
  net = await loadNetworkConfig(launched.configFile);
  deployOut = (await launched.up(330_000)).out;
  tlsRoots = await networkTlsRoots(net);
}, 360_000);

afterAll(async () => {
  gateways.closeAll();
  await launched.down(60_000);
  rmSync(work, { recursive: true, force: true });
}, 90_000);

const gw = (mspId: string, user: 'Admin' | 'User1', onPeerOf = mspId): Promise<Gateway> =>
  gateways.of(net, mspId, { user, peerOf: onPeerOf, tlsRoots });

describe('chaincode dependencies installed at install time, approvals by the own org (real peers)', () => {
  it('deploys a chaincode whose package.json needs yaml; its functions compute with yaml', async () => {
    expect(deployOut).toMatch(/chaincode yamlcc: installed on peer0\.org1/);
    expect(deployOut).toMatch(/chaincode yamlcc: installed on peer0\.org2/);
    expect(deployOut).toMatch(/chaincode yamlcc: definition 1\.0 sequence 1 committed on mychannel/);
    const g1 = await gw('Org1MSP', 'User1');
    const g2 = await gw('Org2MSP', 'User1');
    const cc1 = g1.getNetwork(CHANNEL).getContract(CC);
    expect(result(await cc1.evaluateTransaction('ToYaml', JSON.stringify({ a: [1, 2], b: 'x' })))).toBe(
      'a:\n  - 1\n  - 2\nb: x\n',
    );
    await cc1.submitTransaction('PutYaml', 'doc1', JSON.stringify({ k: 'v', n: 3 }));
    // The value was stored as YAML by one peer and read back through yaml by the other org's peer.
    const cc2 = g2.getNetwork(CHANNEL).getContract(CC);
    let got = '';
    for (let i = 0; i < 40 && got === ''; i++) {
      try {
        got = dec.decode(await cc2.evaluateTransaction('GetAsJson', 'doc1'));
      } catch {
        await sleep(250);
      }
    }
    expect(JSON.parse(JSON.parse(got) as string)).toEqual({ k: 'v', n: 3 });
  }, 180_000);

  it('a dependency that cannot be installed fails the install clearly; nothing recorded; the peer stays healthy', async () => {
    const badDir = join(work, 'badcc');
    writeChaincode(badDir, { '@loom-nonexistent/x': '1.0.0', '@loom/chaincode-sdk': '*' });
    const pkg = await createPackage(badDir, 'badcc_1.0');
    const url = peerUrl(net, findOrg(net, 'Org1MSP').peers[0]!);
    const e = await installOnPeer(url, pkg, tlsRoots).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(LoomError);
    expect((e as LoomError).code).toBe('CHAINCODE_INSTALL_FAILED');
    expect((e as LoomError).message).toContain('HTTP 400');
    expect((e as LoomError).message).toMatch(/npm install of the dependencies \(@loom-nonexistent\/x\) failed/);
    expect((e as LoomError).message).toMatch(/E404|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT/);
    const installed = await queryInstalled(url, tlsRoots);
    expect(installed.map((i) => i.label)).toContain('yamlcc_1.0');
    expect(installed.map((i) => i.label)).not.toContain('badcc_1.0');
    // Still serving: the installed chaincode answers.
    const g1 = await gw('Org1MSP', 'User1');
    expect(result(await g1.getNetwork(CHANNEL).getContract(CC).evaluateTransaction('YamlVersion'))).toBe(
      'parsed:\n  a: 1\n',
    );
  }, 240_000);

  it("an approval is endorsed by the approving org's own peer; another org's peer refuses to", async () => {
    const def = { name: CC, version: '2.0', sequence: 2, endorsementPolicy: "OR('Org1MSP.peer', 'Org2MSP.peer')" };
    const installed = await queryInstalled(peerUrl(net, findOrg(net, 'Org1MSP').peers[0]!), tlsRoots);
    const packageId = installed.find((i) => i.label === 'yamlcc_1.0')!.packageId;
    // Org1's admin, connected to Org2's peer's gateway, asking for Org2's endorsement: the gateway
    // has Org1's peer endorse it, and the approval commits.
    const viaOrg2 = (await gw('Org1MSP', 'Admin', 'Org2MSP')).getNetwork(CHANNEL).getContract('_lifecycle');
    await viaOrg2.submit('ApproveChaincodeDefinitionForMyOrg', {
      arguments: [JSON.stringify({ ...def, packageId })],
      endorsingOrganizations: ['Org2MSP'],
    });
    const lc1 = (await gw('Org1MSP', 'Admin')).getNetwork(CHANNEL).getContract('_lifecycle');
    const readiness = JSON.parse(
      dec.decode(await lc1.evaluateTransaction('CheckCommitReadiness', JSON.stringify(def))),
    ) as { approvals: Record<string, boolean> };
    expect(readiness.approvals).toEqual({ Org1MSP: true, Org2MSP: false });
    // Run directly on Org2's peer (evaluate: no gateway planning), Org1's approval is refused.
    const refused = await viaOrg2
      .evaluate('ApproveChaincodeDefinitionForMyOrg', {
        arguments: [JSON.stringify({ ...def, packageId })],
        endorsingOrganizations: ['Org2MSP'],
      })
      .then(
        () => undefined,
        (x: unknown) => x as Error,
      );
    expect(refused).toBeDefined();
    expect(JSON.stringify({ m: refused?.message, d: (refused as { details?: unknown })?.details })).toMatch(
      /LIFECYCLE_UNAUTHORIZED|must be endorsed by a peer of Org1MSP/,
    );
  }, 180_000);
});
