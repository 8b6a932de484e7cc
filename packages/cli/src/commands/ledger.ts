/** `loom ledger verify`: re-walks a peer's ledger offline and names the first altered block. */
import { resolve } from 'node:path';
import { verifyLedger } from '@loom/peer';
import type { Command } from 'commander';
import { output } from '../output.js';

export function registerLedgerCommands(program: Command): void {
  const ledger = program.command('ledger').description("inspect a peer's ledger");
  ledger
    .command('verify')
    .description(
      'check the block store, hash chain, data hashes and the Merkle accumulator of a stopped peer; exit 1 naming the first bad block',
    )
    .requiredOption('--data <dir>', "the peer's data directory (the `dataDir` of its peer.yaml)")
    .option('-C, --channel <name>', 'channel', 'mychannel')
    .action(async (opts: { data: string; channel: string }) => {
      const json = Boolean(program.opts().json);
      const r = await verifyLedger(resolve(opts.data), opts.channel);
      output(json, r, () =>
        r.ok
          ? `ledger of ${r.channelId} OK: ${r.height} blocks, ${r.txCount} transactions, accumulator root ${r.root.slice(0, 16)}…`
          : `ledger of ${r.channelId} FAILED at block ${r.blockNum}: ${r.reason}`,
      );
      if (!r.ok) process.exitCode = 1;
    });
}
