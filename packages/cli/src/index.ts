import { Command } from 'commander';
import { registerBenchCommand } from './commands/bench.js';
import { registerCaCommands } from './commands/ca.js';
import { registerCertsCommands } from './commands/certs.js';
import { registerChaincodeCommands } from './commands/chaincode.js';
import { registerChannelCommands, registerChannelMembershipCommands } from './commands/channel.js';
import { registerChaincodePackageCommand } from './commands/chaincode-package.js';
import { registerComposeCommands } from './commands/compose.js';
import { registerEventsCommands } from './commands/events.js';
import { registerGovernanceCommands } from './commands/governance.js';
import { registerLedgerCommands } from './commands/ledger.js';
import { registerNetworkCommands } from './commands/network.js';

/** Builds the `loom` command tree. Each area registers its own subcommands. */
export function buildCli(): Command {
  const program = new Command('loom')
    .description('Loom: a permissioned multi-party blockchain network')
    .option('--json', 'machine-readable output')
    .showHelpAfterError();
  registerNetworkCommands(program);
  // Adds compose, serve-ca and setup to the `network` command registered just above.
  registerComposeCommands(program);
  registerCaCommands(program);
  registerLedgerCommands(program);
  registerCertsCommands(program);
  registerChaincodePackageCommand(program);
  registerChaincodeCommands(program);
  registerChannelCommands(program);
  registerChannelMembershipCommands(program);
  registerGovernanceCommands(program);
  registerEventsCommands(program);
  registerBenchCommand(program);
  return program;
}

export async function runCli(argv: string[]): Promise<void> {
  await buildCli().parseAsync(argv);
}
