/**
 * The CA process: `node packages/ca/dist/main.js --config <file>`. Once it serves, it writes one
 * JSON line `{"msg":"CA listening","url":...}` to stdout whatever the log level, for launchers to
 * wait on; it stops cleanly on SIGTERM and SIGINT.
 */
import { pathToFileURL } from 'node:url';
import { loadCaConfig } from './config.js';
import { startCaServer } from './server/index.js';

function configPath(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config' || a === '-c') return argv[i + 1];
    if (a.startsWith('--config=')) return a.slice('--config='.length);
  }
  return process.env.LOOM_CA_CONFIG;
}

export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const file = configPath(argv);
  if (!file) {
    process.stderr.write('usage: loom-ca --config <file>\n');
    process.exitCode = 2;
    return;
  }
  const config = await loadCaConfig(file);
  const server = await startCaServer(config);
  process.stdout.write(
    `${JSON.stringify({ level: 'info', time: new Date().toISOString(), msg: 'CA listening', url: server.url, caName: config.name })}\n`,
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    server.stop().then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`CA stop after ${signal} failed: ${(e as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    const err = e as { code?: string; message?: string };
    // One line with the code, never a stack: config mistakes are the usual cause.
    process.stderr.write(`${JSON.stringify({ level: 'fatal', code: err.code ?? 'CA_INTERNAL', msg: err.message })}\n`);
    process.exit(1);
  });
}
