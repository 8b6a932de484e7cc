import { Command } from 'commander';

/** Builds the `loom` command tree. Each area registers its own subcommands. */
export function buildCli(): Command {
  const program = new Command('loom')
    .description('Loom: a permissioned multi-party blockchain network')
    .option('--json', 'machine-readable output')
    .showHelpAfterError();
  return program;
}

export async function runCli(argv: string[]): Promise<void> {
  await buildCli().parseAsync(argv);
}
