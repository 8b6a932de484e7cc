/**
 * The docker-compose generator: the committed docker-compose.yml is what it makes of the default
 * network-config, and it adapts to other network-configs. (The containers themselves are tested by
 * `npm run test:compose`, test/compose.)
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadNetworkConfig } from '@loom/common';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { registerComposeCommands } from '../commands/compose.js';
import { composeFile, composeNetwork, mountPath } from './compose.js';

const root = fileURLToPath(new URL('../../../..', import.meta.url));
const defaultConfig = join(root, 'network-config/default.yaml');
const work = await mkdtemp(join(tmpdir(), 'loom-compose-gen-'));
afterAll(() => rm(work, { recursive: true, force: true }));

interface Service {
  image: string;
  command: string[];
  ports?: string[];
  healthcheck?: { test?: string[]; disable?: boolean };
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  profiles?: string[];
  volumes: string[];
}
const services = (text: string) => (parse(text) as { services: Record<string, Service> }).services;

describe('loom network compose', () => {
  it('the committed docker-compose.yml is in sync with the generator', async () => {
    const net = await loadNetworkConfig(defaultConfig);
    const expected = composeFile(net, {
      configMount: mountPath(root, defaultConfig),
      composeDir: root,
      generatedBy: 'loom network compose --config network-config/default.yaml -o docker-compose.yml',
    });
    const committed = await readFile(join(root, 'docker-compose.yml'), 'utf8');
    expect(
      committed,
      'docker-compose.yml is stale: run `node packages/cli/dist/bin/loom.js network compose -o docker-compose.yml`',
    ).toBe(expected);
  });

  it('orders the default network: CAs healthy -> setup -> orderers healthy -> join -> peers healthy -> deploy', async () => {
    const s = services(await readFile(join(root, 'docker-compose.yml'), 'utf8'));
    expect(Object.keys(s)).toEqual([
      'ca.org1.example.com',
      'ca.org2.example.com',
      'ca.example.com',
      'setup',
      'orderer0.example.com',
      'orderer1.example.com',
      'orderer2.example.com',
      'join',
      'peer0.org1.example.com',
      'peer0.org2.example.com',
      'deploy',
    ]);
    expect(s.setup!.depends_on).toEqual({
      'ca.org1.example.com': { condition: 'service_healthy' },
      'ca.org2.example.com': { condition: 'service_healthy' },
      'ca.example.com': { condition: 'service_healthy' },
    });
    expect(s['orderer1.example.com']!.depends_on).toEqual({ setup: { condition: 'service_completed_successfully' } });
    expect(Object.keys(s.join!.depends_on!)).toEqual([
      'orderer0.example.com',
      'orderer1.example.com',
      'orderer2.example.com',
    ]);
    const peer = s['peer0.org1.example.com']!;
    expect(peer.profiles).toBeUndefined();
    expect(peer.command).toEqual([
      'node',
      '/opt/loom/packages/cli/dist/bin/loom.js',
      'network',
      'serve-peer',
      '--config',
      '/etc/loom/network.yaml',
      '--peer',
      'peer0.org1.example.com',
    ]);
    expect(peer.depends_on).toEqual({ join: { condition: 'service_completed_successfully' } });
    expect(peer.environment).toEqual({
      LOOM_HEALTHCHECK_URL: 'http://127.0.0.1:9441/healthz',
      LOOM_READY_FILE: '/tmp/loom-peer-ready',
    });
    expect(peer.ports).toEqual(['127.0.0.1:7051:7051', '127.0.0.1:9441:9441']);
    expect(peer.volumes).toContain('peer0.org1.example.com-ledger:/var/loom/node');
    expect(s.deploy!.depends_on).toEqual({
      'peer0.org1.example.com': { condition: 'service_healthy' },
      'peer0.org2.example.com': { condition: 'service_healthy' },
    });
    expect(s.deploy!.command.slice(-2)).toEqual(['--stage', 'deploy']);
    // The chaincode sources are mounted where composeNetwork points the chaincode paths.
    expect(s.setup!.volumes).toContain('./chaincode/basic:/etc/loom/chaincode/basic:ro');
    expect(s.deploy!.volumes).toContain('./chaincode/basic:/etc/loom/chaincode/basic:ro');
    expect(s['orderer0.example.com']!.ports).toEqual([
      '127.0.0.1:7050:7050',
      '127.0.0.1:7053:7053',
      '127.0.0.1:9443:9443',
    ]);
    expect(s['ca.org1.example.com']!.environment!.LOOM_HEALTHCHECK_URL).toBe('https://127.0.0.1:7054/healthz');
    for (const [name, svc] of Object.entries(s)) {
      for (const p of svc.ports ?? []) expect(p, name).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
      if (svc.ports) expect(svc.healthcheck?.test, name).toContain('node');
      expect(svc.image, name).toMatch(/^\$\{LOOM_IMAGE:-loom:latest\}$/);
    }
  });

  it('follows another network-config: one orderer, no TLS, a third organization', async () => {
    const text = (await readFile(defaultConfig, 'utf8'))
      .replace('enabled: true', 'enabled: false')
      .replace(/ {4}- name: orderer1[\s\S]*?operationsPort: 9445\n/, '')
      .replace('consenters: [orderer0, orderer1, orderer2]', 'consenters: [orderer0]')
      .replace(
        'ordererOrganization:',
        [
          '  - mspId: Org3MSP',
          '    domain: org3.example.com',
          '    ca: { port: 10054 }',
          '    peers:',
          '      - { name: peer0, port: 10051, p2pPort: 10151, operationsPort: 9461 }',
          '',
          'ordererOrganization:',
        ].join('\n'),
      );
    const file = join(work, 'net.yaml');
    await writeFile(file, text);
    const net = await loadNetworkConfig(file);
    const s = services(composeFile(net, { configMount: './net.yaml' }));
    expect(Object.keys(s).filter((n) => n.startsWith('orderer'))).toEqual(['orderer0.example.com']);
    expect(s['ca.org3.example.com']!.environment!.LOOM_HEALTHCHECK_URL).toBe('http://127.0.0.1:10054/healthz');
    expect(s['ca.org3.example.com']!.volumes).toContain('./net.yaml:/etc/loom/network.yaml:ro');
    expect(s['peer0.org3.example.com']!.ports).toEqual(['127.0.0.1:10051:10051', '127.0.0.1:9461:9461']);
    // Inside the compose network every host is the service name.
    const c = composeNetwork(net);
    expect(c.ordererOrganization.orderers.map((o) => o.host)).toEqual(['orderer0.example.com']);
    expect(c.organizations.map((o) => o.ca.host)).toEqual([
      'ca.org1.example.com',
      'ca.org2.example.com',
      'ca.org3.example.com',
    ]);
    expect(c.dataDir).toBe('/var/loom/data');
    expect(c.chaincodes.map((cc) => cc.path)).toEqual(['/etc/loom/chaincode/basic']);
  });

  it('is a subcommand of `loom network` and writes the file', async () => {
    const program = new Command('loom').option('--json').exitOverride();
    program.command('network').description('existing');
    registerComposeCommands(program);
    const network = program.commands.filter((c) => c.name() === 'network');
    expect(network).toHaveLength(1);
    expect(network[0]!.commands.map((c) => c.name())).toEqual(['compose', 'serve-ca', 'serve-peer', 'setup']);
    const out = join(work, 'sub', 'docker-compose.yml');
    const cwd = process.cwd();
    process.chdir(root);
    try {
      await program.parseAsync(['node', 'loom', '--json', 'network', 'compose', '-c', defaultConfig, '-o', out]);
    } finally {
      process.chdir(cwd);
    }
    const s = services(await readFile(out, 'utf8'));
    expect(s['ca.org1.example.com']!.volumes[0]).toMatch(
      /network-config\/default\.yaml:\/etc\/loom\/network\.yaml:ro$/,
    );
  });
});
