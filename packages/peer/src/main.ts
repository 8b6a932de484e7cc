#!/usr/bin/env node
/**
 * `node packages/peer/dist/main.js --config <peer.yaml>`: runs a peer until SIGINT/SIGTERM.
 * Exit codes: 0 after a clean stop, 1 on a start failure, 2 on bad arguments.
 */
import { isLoomError } from '@loom/common';
import { loadPeerConfig } from './node/config.js';
import { startPeer } from './node/peer-node.js';

function usage(message?: string): never {
  if (message) process.stderr.write(`${message}\n`);
  process.stderr.write('usage: loom-peer --config <peer.yaml>\n');
  process.exit(2);
}

function configPath(argv: readonly string[]): string {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config' || a === '-c') return argv[i + 1] ?? usage('--config needs a file');
    if (a.startsWith('--config=')) return a.slice('--config='.length);
    if (a === '--help' || a === '-h') usage();
  }
  return usage('missing --config');
}

async function main(): Promise<void> {
  const config = await loadPeerConfig(configPath(process.argv.slice(2)));
  const peer = await startPeer(config);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`peer ${config.id}: ${signal}, stopping\n`);
    peer.stop().then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`peer ${config.id}: stop failed: ${(e as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((e: unknown) => {
  const msg = isLoomError(e) ? `${e.code}: ${e.message}` : e instanceof Error ? (e.stack ?? e.message) : String(e);
  process.stderr.write(`peer failed to start: ${msg}\n`);
  process.exit(1);
});
