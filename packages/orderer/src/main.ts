#!/usr/bin/env node
/** `node packages/orderer/dist/main.js --config orderer.yaml`: runs one ordering node until SIGTERM/SIGINT. */
import { loadOrdererConfig, startOrderer } from './orderer.js';

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  if (i >= 0) return process.argv[i + 1];
  const eq = process.argv.find((a) => a.startsWith(`${name}=`));
  return eq?.slice(name.length + 1);
}

async function main(): Promise<void> {
  const file = argValue('--config') ?? process.env.LOOM_ORDERER_CONFIG;
  if (!file) {
    process.stderr.write('usage: loom-orderer --config <orderer.yaml>\n');
    process.exit(2);
  }
  const config = await loadOrdererConfig(file);
  const orderer = await startOrderer(config);
  let exiting = false;
  const shutdown = (signal: string) => {
    if (exiting) return;
    exiting = true;
    orderer.logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    orderer.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((e: unknown) => {
  const err = e as { code?: string; message?: string };
  process.stderr.write(`orderer failed to start: ${err.code ? `${err.code}: ` : ''}${err.message ?? String(e)}\n`);
  process.exit(1);
});
