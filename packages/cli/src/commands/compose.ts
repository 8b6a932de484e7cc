/**
 * `loom network compose` (generate a docker-compose file from a network-config) and the commands
 * its containers run: `loom network serve-ca` and `loom network setup`. See docs/docker.md.
 */
import { resolve } from 'node:path';
import { startCaServer, loadCaConfig } from '@loom/ca';
import { loadNetworkConfig, type NetworkConfig } from '@loom/common';
import type { Command } from 'commander';
import {
  composeNetwork,
  DEFAULT_IMAGE,
  servePeer,
  setupCrypto,
  setupDeploy,
  setupJoin,
  writeCaConfig,
  writeComposeFile,
} from '../network/compose.js';
import { allOrgs } from '../network/layout.js';
import type { Progress } from '../network/up.js';
import { output } from '../output.js';

const DEFAULT_CONFIG = 'network-config/default.yaml';

function progressPrinter(): Progress {
  const t0 = Date.now();
  return {
    step(message) {
      process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${message}\n`);
    },
  };
}

async function containerNetwork(opts: { config: string; data?: string }): Promise<NetworkConfig> {
  const net = await loadNetworkConfig(resolve(opts.config));
  return opts.data ? composeNetwork(net, resolve(opts.data)) : composeNetwork(net);
}

function networkCommand(program: Command): Command {
  return (
    program.commands.find((c) => c.name() === 'network') ??
    program.command('network').description('run a network from a network-config')
  );
}

export function registerComposeCommands(program: Command): void {
  const network = networkCommand(program);

  network
    .command('compose')
    .description('generate a docker-compose file (one service per CA, orderer and peer) from a network-config')
    .option('-c, --config <file>', 'network-config file', DEFAULT_CONFIG)
    .option('-o, --output <file>', 'compose file to write', 'docker-compose.yml')
    .option('--image <ref>', 'image the services run (LOOM_IMAGE overrides it at run time)', DEFAULT_IMAGE)
    .action(async (opts: { config: string; output: string; image: string }) => {
      const net = await loadNetworkConfig(resolve(opts.config));
      await writeComposeFile(net, opts.config, resolve(opts.output), opts.image);
      const json = Boolean(program.opts().json);
      output(
        json,
        { output: resolve(opts.output), network: net.name },
        () => `wrote ${opts.output} for network '${net.name}'; start it with: docker compose -f ${opts.output} up -d`,
      );
    });

  network
    .command('serve-ca')
    .description("(in a container) write an organization's CA config into the data volume and run the CA")
    .option('-c, --config <file>', 'network-config file', '/etc/loom/network.yaml')
    .option('-d, --data <dir>', 'shared data directory (default /var/loom/data)')
    .requiredOption('--org <mspId>', 'organization whose CA to run')
    .action(async (opts: { config: string; data?: string; org: string }) => {
      const c = await containerNetwork(opts);
      const org = allOrgs(c).find((o) => o.mspId === opts.org);
      if (!org) throw new Error(`no organization ${opts.org} in ${opts.config}`);
      const config = await loadCaConfig(await writeCaConfig(c, org));
      const server = await startCaServer(config);
      process.stdout.write(`CA ${config.name} of ${org.mspId} listening at ${server.url}\n`);
      await new Promise<void>((done) => {
        const stop = () => void server.stop().finally(done);
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    });

  network
    .command('serve-peer')
    .description("(in a container) run a peer node, install the network's chaincode packages on it, then report ready")
    .option('-c, --config <file>', 'network-config file', '/etc/loom/network.yaml')
    .option('-d, --data <dir>', 'shared data directory (default /var/loom/data)')
    .requiredOption('--peer <fqdn>', 'the peer to run, e.g. peer0.org1.example.com')
    .action(async (opts: { config: string; data?: string; peer: string }) => {
      const c = await containerNetwork(opts);
      const code = await servePeer(c, opts.peer, progressPrinter());
      process.exit(code);
    });

  network
    .command('setup')
    .description(
      '(in a container) enroll every identity through the CA services, write node configs, genesis blocks and chaincode packages, join the orderers to the channels, deploy the chaincodes',
    )
    .option('-c, --config <file>', 'network-config file', '/etc/loom/network.yaml')
    .option('-d, --data <dir>', 'shared data directory (default /var/loom/data)')
    .option(
      '--stage <stage>',
      "'crypto' (before the orderers start), 'join' (once they are up), 'deploy' (once the peers are up), or 'all'",
      'all',
    )
    .action(async (opts: { config: string; data?: string; stage: string }) => {
      if (!['crypto', 'join', 'deploy', 'all'].includes(opts.stage))
        throw new Error(`--stage must be crypto, join, deploy or all (got ${opts.stage})`);
      const c = await containerNetwork(opts);
      const progress = progressPrinter();
      const all = opts.stage === 'all';
      if (all || opts.stage === 'crypto') await setupCrypto(c, progress);
      if (all || opts.stage === 'join') await setupJoin(c, progress);
      // 'all' cannot deploy: the peers start between join and deploy.
      if (opts.stage === 'deploy') await setupDeploy(c, progress);
      progress.step(`setup stage '${opts.stage}' done`);
    });
}
