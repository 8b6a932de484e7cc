import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isLoomError, type LoomError } from '../errors.js';
import { ChannelPolicies } from '../policy/channel-policies.js';
import {
  type ConfigInvalidDetails,
  channelPolicyDefinitions,
  loadNetworkConfig,
  parseByteSize,
  parseDuration,
  parseNetworkConfig,
} from './index.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const defaultFile = join(repoRoot, 'network-config/default.yaml');
const defaultText = readFileSync(defaultFile, 'utf8');

function configError(text: string, file = 'net.yaml'): LoomError<ConfigInvalidDetails> {
  try {
    parseNetworkConfig(text, file);
  } catch (e) {
    if (isLoomError(e, 'CONFIG_INVALID')) return e as LoomError<ConfigInvalidDetails>;
    throw e;
  }
  throw new Error('expected the config to be rejected');
}

/** 1-based line of the first line of `text` containing `needle` (after `after`, if given). */
function lineOf(text: string, needle: string, after?: string): number {
  const lines = text.split('\n');
  const start = after === undefined ? 0 : lines.findIndex((l) => l.includes(after));
  const i = lines.findIndex((l, k) => k >= start && l.includes(needle));
  if (i < 0) throw new Error(`${needle} not in text`);
  return i + 1;
}

function replaceOnce(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`${from} not in text`);
  return text.replace(from, to);
}

const minimal = `
name: tiny
organizations:
  - mspId: Org1MSP
    domain: org1.example.com
    ca: { port: 7054 }
    peers:
      - { name: peer0, port: 7051, p2pPort: 7151, operationsPort: 9441 }
ordererOrganization:
  domain: example.com
  ca: { port: 9054 }
  orderers:
    - { name: orderer0, port: 7050, adminPort: 7053, raftPort: 7150, operationsPort: 9443 }
channels:
  - name: ch1
    organizations: [Org1MSP]
`;

describe('units', () => {
  it('parses durations and sizes', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('2s')).toBe(2000);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration(40)).toBe(40);
    expect(parseDuration('40')).toBe(40);
    expect(() => parseDuration('soon')).toThrow(/invalid duration/);
    expect(parseByteSize('10 MB')).toBe(10 * 1024 * 1024);
    expect(parseByteSize('512KB')).toBe(512 * 1024);
    expect(parseByteSize('2 MiB')).toBe(2 * 1024 * 1024);
    expect(parseByteSize(4096)).toBe(4096);
    expect(parseByteSize('100')).toBe(100);
    expect(() => parseByteSize('10 parsecs')).toThrow(/invalid size/);
  });
});

describe('network-config/default.yaml', () => {
  it('loads with every default filled', async () => {
    const c = await loadNetworkConfig(defaultFile);
    expect(c.name).toBe('loom');
    expect(c.organizations.map((o) => o.mspId)).toEqual(['Org1MSP', 'Org2MSP']);
    expect(c.organizations[0]!.peers[0]).toMatchObject({ name: 'peer0', fqdn: 'peer0.org1.example.com', port: 7051 });
    expect(c.organizations[0]!.ca).toMatchObject({ name: 'ca.org1.example.com', admin: { user: 'admin' } });
    expect(c.ordererOrganization.mspId).toBe('OrdererMSP');
    expect(c.ordererOrganization.orderers.map((o) => o.name)).toEqual(['orderer0', 'orderer1', 'orderer2']);
    const ch = c.channels[0]!;
    expect(ch.name).toBe('mychannel');
    expect(ch.batch).toEqual({
      batchTimeoutMs: 250,
      maxMessageCount: 500,
      absoluteMaxBytes: 10 * 1024 * 1024,
      preferredMaxBytes: 2 * 1024 * 1024,
    });
    expect(ch.policies).toMatchObject({ Admins: 'MAJORITY Admins', LifecycleEndorsement: 'MAJORITY Endorsement' });
    expect(ch.consenters).toEqual(['orderer0', 'orderer1', 'orderer2']);
    expect(c.chaincodes[0]).toMatchObject({
      name: 'basic',
      path: join(repoRoot, 'chaincode/basic'),
      channel: 'mychannel',
      endorsementPolicy: undefined,
    });
    expect(c.tls).toEqual({ enabled: true, clientAuthRequired: false, operations: true });
    expect(c.dataDir).toBe(join(repoRoot, '.loom/data'));
  });

  it("feeds a channel's policies to ChannelPolicies", async () => {
    const c = await loadNetworkConfig(defaultFile);
    const policies = new ChannelPolicies(channelPolicyDefinitions(c, 'mychannel'));
    const peer = (mspId: string) => ({ mspId, role: 'peer' as const, isAdmin: false, id: `${mspId}-peer` });
    expect(policies.evaluate('Endorsement', [peer('Org1MSP')]).satisfied).toBe(false);
    expect(policies.evaluate('Endorsement', [peer('Org1MSP'), peer('Org2MSP')]).satisfied).toBe(true);
  });
});

describe('parseNetworkConfig', () => {
  it('fills defaults for a minimal file', () => {
    const c = parseNetworkConfig(minimal, '/tmp/net/tiny.yaml');
    expect(c.organizations[0]).toMatchObject({
      name: 'Org1',
      anchorPeers: ['peer0'],
      policies: { Admins: "OR('Org1MSP.admin')", Endorsement: "OR('Org1MSP.peer')" },
    });
    expect(c.organizations[0]!.peers[0]).toMatchObject({ host: '127.0.0.1', chaincodePort: undefined });
    expect(c.ordererOrganization).toMatchObject({ mspId: 'OrdererMSP', name: 'Orderer' });
    expect(c.channels[0]).toMatchObject({
      consenters: ['orderer0'],
      policies: { Readers: 'ANY Readers', Endorsement: 'MAJORITY Endorsement' },
      batch: { batchTimeoutMs: 250, maxMessageCount: 500 },
      raft: { tickIntervalMs: 100, electionTick: 10, heartbeatTick: 1 },
    });
    expect(c.dataDir).toBe('/tmp/net/.loom');
    expect(c.chaincodes).toEqual([]);
    expect(c.tls).toEqual({ enabled: true, clientAuthRequired: false, operations: true });
  });

  it('reads tls.operations, and refuses a non-boolean with its path', () => {
    const off = replaceOnce(defaultText, 'clientAuthRequired: false', 'clientAuthRequired: false\n  operations: false');
    expect(parseNetworkConfig(off, 'net.yaml').tls).toEqual({
      enabled: true,
      clientAuthRequired: false,
      operations: false,
    });
    const bad = replaceOnce(
      defaultText,
      'clientAuthRequired: false',
      'clientAuthRequired: false\n  operations: yes-please',
    );
    const e = configError(bad);
    expect(e.details.problems.map((p) => p.path)).toEqual(['tls.operations']);
    expect(e.details.problems[0]!.line).toBe(lineOf(bad, 'operations: yes-please'));
  });

  it('reports bad YAML with its line', () => {
    const e = configError('name: x\norganizations: [\n  - foo: bar\n', 'bad.yaml');
    expect(e.details.file).toBe('bad.yaml');
    expect(e.message).toMatch(/^invalid network config bad\.yaml/);
    expect(e.details.problems[0]!.message).toMatch(/^YAML: /);
    expect(e.details.problems[0]!.line).toBeGreaterThan(1);
    expect(configError('- just\n- a list\n').details.problems[0]!.message).toContain('mapping');
  });

  it('reports duplicate YAML keys', () => {
    const e = configError('name: a\nname: b\n');
    expect(e.details.problems[0]).toMatchObject({ line: 2 });
  });

  it('reports a wrong type with file, path, line and column', () => {
    const text = replaceOnce(defaultText, 'port: 8051', 'port: eighty');
    const e = configError(text, 'network-config/default.yaml');
    const line = lineOf(text, 'port: eighty');
    expect(e.details.problems).toEqual([
      { path: 'organizations[1].peers[0].port', line, column: 15, message: 'expected a port number' },
    ]);
    expect(e.message).toContain(
      `network-config/default.yaml:${line}:15 organizations[1].peers[0].port: expected a port number`,
    );
  });

  it('collects every problem, not just the first', () => {
    let text = replaceOnce(defaultText, 'port: 8051', 'port: 70000');
    text = replaceOnce(text, 'maxMessageCount: 500', 'maxMessageCount: many');
    text = replaceOnce(text, 'batchTimeout: 250ms', 'batchTimeout: soon');
    text = replaceOnce(text, 'clientAuthRequired: false', 'clientAuthRequired: false\n  extra: 1');
    const e = configError(text);
    expect(e.details.problems.map((p) => p.path).sort()).toEqual([
      'channels[0].batch.batchTimeout',
      'channels[0].batch.maxMessageCount',
      'organizations[1].peers[0].port',
      'tls.extra',
    ]);
    const extra = e.details.problems.find((p) => p.path === 'tls.extra')!;
    expect(extra).toMatchObject({ line: lineOf(text, 'extra: 1'), message: "unknown field 'extra'" });
    const timeout = e.details.problems.find((p) => p.path === 'channels[0].batch.batchTimeout')!;
    expect(timeout.message).toContain("invalid duration 'soon'");
    expect(timeout.line).toBe(lineOf(text, 'batchTimeout: soon'));
  });

  it('reports a missing organization field at its parent', () => {
    const text = replaceOnce(defaultText, '    domain: org2.example.com\n', '');
    const e = configError(text);
    expect(e.details.problems).toEqual([
      {
        path: 'organizations[1].domain',
        line: lineOf(text, '- mspId: Org2MSP'),
        column: 5,
        message: "missing required field 'domain'",
      },
    ]);
  });

  it('reports a missing organizations list', () => {
    const e = configError(minimal.replace(/organizations:\n(?: {2}.*\n)+/, ''));
    expect(e.details.problems).toContainEqual(
      expect.objectContaining({ path: 'organizations', message: "missing required field 'organizations'", line: 2 }),
    );
  });

  it('reports an unknown organization in a channel', () => {
    const text = replaceOnce(defaultText, 'organizations: [Org1MSP, Org2MSP]', 'organizations: [Org1MSP, Org3MSP]');
    const e = configError(text);
    expect(e.details.problems).toEqual([
      expect.objectContaining({
        path: 'channels[0].organizations[1]',
        line: lineOf(text, 'Org3MSP'),
        message: expect.stringContaining("unknown organization 'Org3MSP'"),
      }),
    ]);
  });

  it('reports a policy principal naming an undefined MSP, pointing into the policy', () => {
    const text = replaceOnce(defaultText, `Endorsement: "OR('Org1MSP.peer')"`, `Endorsement: "OR('Org9MSP.peer')"`);
    const e = configError(text, 'net.yaml');
    const line = lineOf(text, 'Org9MSP');
    const column = text.split('\n')[line - 1]!.indexOf('Org9MSP') + 1;
    expect(e.details.problems).toEqual([
      {
        path: 'organizations[0].policies.Endorsement',
        line,
        column,
        message: "policy principal 'Org9MSP.peer' is unknown: Org9MSP is not defined in this network",
      },
    ]);
    expect(e.message).toContain(`net.yaml:${line}:${column} organizations[0].policies.Endorsement`);
  });

  it('reports chaincode and channel policies naming organizations outside the channel', () => {
    let text = defaultText.replace('organizations: [Org1MSP, Org2MSP]', 'organizations: [Org1MSP]');
    text = replaceOnce(
      text,
      '    # endorsementPolicy: "AND',
      `    endorsementPolicy: "AND('Org1MSP.peer', 'Org2MSP.peer')"\n    # endorsementPolicy: "AND`,
    );
    text = replaceOnce(text, 'Writers: ANY Writers', `Writers: "OR('Org1MSP.client', 'Org9MSP.client')"`);
    const e = configError(text);
    expect(e.details.problems.map((p) => [p.path, p.message])).toEqual([
      [
        'channels[0].policies.Writers',
        "policy principal 'Org9MSP.client' is unknown: Org9MSP is not defined in this network",
      ],
      [
        'chaincodes[0].endorsementPolicy',
        "policy principal 'Org2MSP.peer' is unknown: Org2MSP is not an organization of channel mychannel",
      ],
    ]);
    expect(e.details.problems[1]!.line).toBe(lineOf(text, '    endorsementPolicy: "AND'));
  });

  it('reports policy syntax errors at the character', () => {
    const text = replaceOnce(defaultText, `Admins: "OR('Org2MSP.admin')"`, `Admins: "OR('Org2MSP.admin'"`);
    const e = configError(text);
    const line = lineOf(text, `Admins: "OR('Org2MSP.admin'"`);
    expect(e.details.problems).toEqual([
      expect.objectContaining({
        path: 'organizations[1].policies.Admins',
        line,
        column: text.split('\n')[line - 1]!.lastIndexOf('"') + 1,
        message: expect.stringContaining("expected ',' or ')'"),
      }),
    ]);
  });

  it('reports implicit meta policies naming a sub-policy an organization lacks', () => {
    const text = replaceOnce(defaultText, 'Admins: MAJORITY Admins', 'Admins: MAJORITY Admin');
    expect(configError(text).details.problems).toEqual([
      expect.objectContaining({
        path: 'channels[0].policies.Admins',
        message: "'MAJORITY Admin' refers to policy 'Admin', which Org1MSP, Org2MSP does not define",
      }),
    ]);
    const orgLevel = replaceOnce(defaultText, `Admins: "OR('Org1MSP.admin')"`, 'Admins: ANY Admins');
    expect(configError(orgLevel).details.problems[0]!.message).toContain('implicit meta policy');
  });

  it('reports duplicate ports, naming both places', () => {
    const text = replaceOnce(defaultText, 'operationsPort: 9451', 'operationsPort: 9441');
    const e = configError(text);
    expect(e.details.problems).toEqual([
      {
        path: 'organizations[1].peers[0].operationsPort',
        line: lineOf(text, 'operationsPort: 9441', 'Org2MSP'),
        column: 25,
        message: 'port 9441 on 127.0.0.1 is already used by organizations[0].peers[0].operationsPort',
      },
    ]);
  });

  it('allows the same port on different hosts but not against a wildcard host', () => {
    const sameOther = replaceOnce(minimal, 'port: 7051,', 'port: 7051, host: 127.0.0.2,').replace(
      'port: 7050,',
      'port: 7051,',
    );
    expect(parseNetworkConfig(sameOther, 'x.yaml').ordererOrganization.orderers[0]!.port).toBe(7051);
    const wildcard = replaceOnce(minimal, 'port: 7051,', 'port: 7051, host: 0.0.0.0,').replace(
      'port: 7050,',
      'port: 7051,',
    );
    expect(configError(wildcard).details.problems).toEqual([
      expect.objectContaining({
        path: 'ordererOrganization.orderers[0].port',
        message: 'port 7051 on 127.0.0.1 is already used by organizations[0].peers[0].port',
      }),
    ]);
  });

  it('reports duplicate names', () => {
    let text = replaceOnce(defaultText, '    - name: orderer1', '    - name: orderer0');
    text = replaceOnce(text, 'mspId: Org2MSP', 'mspId: Org1MSP');
    const e = configError(text);
    const paths = e.details.problems.map((p) => p.path);
    expect(paths).toContain('organizations[1].mspId');
    expect(paths).toContain('ordererOrganization.orderers[1].name');
    const dupOrderer = e.details.problems.find((p) => p.path === 'ordererOrganization.orderers[1].name')!;
    expect(dupOrderer.message).toBe("duplicate orderer name 'orderer0' (also at ordererOrganization.orderers[0].name)");
    expect(dupOrderer.line).toBe(lineOf(text, '- name: orderer0', 'port: 7050'));
  });

  it('reports an unknown consenter and an unknown chaincode channel', () => {
    let text = replaceOnce(
      defaultText,
      'consenters: [orderer0, orderer1, orderer2]',
      'consenters: [orderer0, orderer7]',
    );
    text = replaceOnce(text, 'channel: mychannel', 'channel: otherchannel');
    const e = configError(text);
    expect(e.details.problems).toEqual([
      expect.objectContaining({
        path: 'channels[0].consenters[1]',
        line: lineOf(text, 'orderer7'),
        message: "unknown consenter 'orderer7' (orderers: orderer0, orderer1, orderer2)",
      }),
      expect.objectContaining({
        path: 'chaincodes[0].channel',
        line: lineOf(text, 'channel: otherchannel'),
        message: "unknown channel 'otherchannel'",
      }),
    ]);
  });

  it('reports anchor peers that are not peers of the organization, and impossible batch sizes', () => {
    let text = replaceOnce(defaultText, 'anchorPeers: [peer0]', 'anchorPeers: [peer9]');
    text = replaceOnce(text, 'preferredMaxBytes: 2 MB', 'preferredMaxBytes: 20 MB');
    expect(configError(text).details.problems.map((p) => p.path)).toEqual([
      'organizations[0].anchorPeers[0]',
      'channels[0].batch.preferredMaxBytes',
    ]);
  });

  it('rejects the orderer organization as a channel member', () => {
    const text = replaceOnce(defaultText, 'organizations: [Org1MSP, Org2MSP]', 'organizations: [Org1MSP, OrdererMSP]');
    expect(configError(text).details.problems[0]!.message).toContain('is the orderer organization');
  });

  it('answers a missing file with CONFIG_NOT_FOUND', async () => {
    await expect(loadNetworkConfig('/nonexistent/net.yaml')).rejects.toMatchObject({ code: 'CONFIG_NOT_FOUND' });
  });
});
