/** `loom network up|down|status` and `loom start` (network up + demo, until Ctrl-C). */
import { resolve } from 'node:path';
import { LoomError, loadNetworkConfig, type NetworkConfig } from '@loom/common';
import type { Command } from 'commander';
import { runDemo } from '../network/demo.js';
import { isPidAlive, readPids, stopPids } from '../network/processes.js';
import { type NetworkHandle, networkUp, type Progress } from '../network/up.js';
import { output } from '../output.js';

export const DEFAULT_CONFIG = 'network-config/default.yaml';

export async function loadConfig(opts: { config?: string; data?: string }): Promise<NetworkConfig> {
  const net = await loadNetworkConfig(resolve(opts.config ?? DEFAULT_CONFIG));
  return opts.data ? { ...net, dataDir: resolve(opts.data) } : net;
}

export function progressPrinter(json: boolean): Progress {
  const t0 = Date.now();
  return {
    step(message) {
      if (json) process.stderr.write(`${JSON.stringify({ t: Date.now() - t0, step: message })}\n`);
      else process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${message}\n`);
    },
  };
}

function printEndpoints(handle: NetworkHandle, json: boolean): void {
  output(json, { dataDir: handle.config.dataDir, endpoints: handle.endpoints }, () =>
    [
      `network '${handle.config.name}' is up (data in ${handle.config.dataDir}):`,
      ...handle.endpoints.map((e) => `  ${e.kind.padEnd(8)} ${e.name.padEnd(28)} ${e.url}`),
    ].join('\n'),
  );
}

/** Keeps the foreground network until SIGINT/SIGTERM, then stops every process cleanly. */
async function holdUntilSignal(handle: NetworkHandle): Promise<void> {
  process.stdout.write('\nThe network stays up. Press Ctrl-C to stop every process.\n');
  await new Promise<void>((done) => {
    const stop = () => done();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    for (const n of handle.nodes) {
      n.child?.once('exit', (code, signal) => {
        if (code !== 0 && signal !== 'SIGTERM')
          process.stderr.write(
            `${n.name} exited unexpectedly (code ${code}, ${signal ?? 'no signal'}); see ${n.logFile}\n`,
          );
      });
    }
  });
  process.stdout.write('stopping...\n');
  await stopPids(handle.nodes);
  process.stdout.write('every process stopped.\n');
  // Idle keep-alive sockets of the clients (to peers now gone) must not hold the command open.
  process.exit(process.exitCode ?? 0);
}

export function registerNetworkCommands(program: Command): void {
  const network = program.command('network').description('run a network of local processes from a network-config');
  const common = (c: Command) =>
    c
      .option('-c, --config <file>', 'network-config file', DEFAULT_CONFIG)
      .option('-d, --data <dir>', 'data directory (overrides the config)');

  common(network.command('up').description('start CAs, enroll identities, create channels, start orderers'))
    .option('--detach', 'return once ready and leave the processes running')
    .action(async (opts: { config?: string; data?: string; detach?: boolean }) => {
      const json = Boolean(program.opts().json);
      const net = await loadConfig(opts);
      const handle = await networkUp(net, { detach: Boolean(opts.detach), progress: progressPrinter(json) });
      printEndpoints(handle, json);
      if (handle.chaincodeFailed && opts.detach) {
        // The network is usable for inspection, but what the config asked for is not there: say so
        // with a failing exit status, so scripts and CI do not go on against a half-deployed network.
        throw new LoomError(
          'NETWORK_CHAINCODE_DEPLOY_FAILED',
          `${handle.chaincodeNote}; the other processes are still up (logs in ${net.dataDir}/logs; 'loom network down' stops them)`,
        );
      }
      if (!opts.detach) await holdUntilSignal(handle);
    });

  common(network.command('down').description('stop the processes a detached network started')).action(async (opts) => {
    const json = Boolean(program.opts().json);
    const net = await loadConfig(opts);
    const pids = readPids(net.dataDir);
    await stopPids(pids);
    output(json, { stopped: pids.length }, () => `stopped ${pids.length} processes of ${net.dataDir}`);
  });

  common(network.command('status').description('which processes of the network are running')).action(async (opts) => {
    const json = Boolean(program.opts().json);
    const net = await loadConfig(opts);
    const rows = readPids(net.dataDir).map((p) => ({ ...p, running: isPidAlive(p.pid) }));
    output(json, rows, () =>
      rows.length === 0
        ? 'no network recorded in this data directory'
        : rows
            .map((r) => `${r.kind.padEnd(8)} ${r.name.padEnd(28)} pid ${r.pid} ${r.running ? 'running' : 'stopped'}`)
            .join('\n'),
    );
  });

  common(
    program.command('start').description('bring the default network up, run a demo transaction, stay up until Ctrl-C'),
  ).action(async (opts: { config?: string; data?: string }) => {
    const json = Boolean(program.opts().json);
    const net = await loadConfig(opts);
    const progress = progressPrinter(json);
    const handle = await networkUp(net, { detach: false, progress });
    printEndpoints(handle, json);
    try {
      await runDemo(handle, progress);
    } catch (e) {
      await stopPids(handle.nodes);
      throw e;
    }
    await holdUntilSignal(handle);
  });
}
