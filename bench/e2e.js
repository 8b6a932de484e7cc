// End-to-end benchmark: the same as `loom bench` (packages/cli/src/bench/): brings up the network of
// a network-config (or --attach to one), drives a closed-loop load from worker client processes and
// writes JSON + HTML reports into bench/results/.
//
//   npm run bench -- e2e [--workload create|read|transfer|mixed] [--concurrency C] [--duration S]
//                        [--warmup S] [--config topology.yaml] [--attach] [--help]
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export async function run(args = []) {
  const { runCli } = await import(pathToFileURL(join(here, '../packages/cli/dist/index.js')).href);
  try {
    await runCli(['node', 'loom', 'bench', ...args]);
  } catch (e) {
    process.stderr.write(`bench e2e: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(e)}\n`);
    process.exit(2);
  }
}
