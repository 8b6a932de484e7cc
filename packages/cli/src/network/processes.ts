/**
 * Node processes of a local network: spawned from the built packages, logs under
 * `<data>/logs/<name>.log`, pids recorded in `<data>/pids.json` for `loom network down`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export type NodeKind = 'ca' | 'orderer' | 'peer';

const require = createRequire(import.meta.url);

/** The runnable entry of a role, resolved through the workspace packages' built `dist/`. */
export function entryPoint(kind: NodeKind): string {
  const pkg = { ca: '@loom/ca', orderer: '@loom/orderer', peer: '@loom/peer' }[kind];
  return join(dirname(require.resolve(`${pkg}/package.json`)), 'dist', 'main.js');
}

/**
 * Extra `node` arguments for launched processes (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`):
 * `LOOM_NODE_ARGS_<KIND>` (PEER, ORDERER, CA) for one role, else `LOOM_NODE_ARGS` for all.
 */
export function nodeArgs(kind: NodeKind, env: NodeJS.ProcessEnv = process.env): string[] {
  const raw = env[`LOOM_NODE_ARGS_${kind.toUpperCase()}`] ?? env.LOOM_NODE_ARGS ?? '';
  return raw.split(/\s+/).filter((a) => a.length > 0);
}

export interface RunningNode {
  name: string;
  kind: NodeKind;
  pid: number;
  logFile: string;
  child: ChildProcess | undefined;
  alive(): boolean;
}

export function spawnNode(
  kind: NodeKind,
  name: string,
  configFile: string,
  dataDir: string,
  detach: boolean,
  env: Record<string, string> = {},
): RunningNode {
  const logDir = join(dataDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [...nodeArgs(kind), entryPoint(kind), '--config', configFile], {
    stdio: ['ignore', fd, fd],
    detached: detach,
    env: { ...process.env, ...env, LOOM_NODE_NAME: name },
  });
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  if (detach) child.unref();
  return { name, kind, pid: child.pid ?? -1, logFile, child, alive: () => !exited };
}

/** Whether `pid` runs. A zombie (exited, not yet reaped by its parent) does not: it holds no port or file. */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // Linux: the state follows the parenthesised command name, which may itself contain ") ".
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (not Linux): kill(pid, 0) is all there is
  }
}

export interface PidRecord {
  name: string;
  kind: NodeKind;
  pid: number;
}

export function writePids(dataDir: string, nodes: readonly RunningNode[]): void {
  const records: PidRecord[] = nodes.map((n) => ({ name: n.name, kind: n.kind, pid: n.pid }));
  writeFileSync(join(dataDir, 'pids.json'), `${JSON.stringify(records, null, 2)}\n`);
}

export function readPids(dataDir: string): PidRecord[] {
  try {
    return JSON.parse(readFileSync(join(dataDir, 'pids.json'), 'utf8')) as PidRecord[];
  } catch {
    return [];
  }
}

/** SIGTERM every recorded process, then SIGKILL what is still alive after `graceMs`. */
export async function stopPids(pids: readonly { pid: number }[], graceMs = 10_000): Promise<void> {
  for (const { pid } of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && pids.some((p) => isPidAlive(p.pid))) await new Promise((r) => setTimeout(r, 100));
  for (const { pid } of pids) {
    if (isPidAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // raced with exit
      }
    }
  }
  // A killed process still holds its ports and files until the kernel has torn it down: return
  // once it has (bounded), so `network down && network up` never meets the old processes.
  const killDeadline = Date.now() + 5_000;
  while (Date.now() < killDeadline && pids.some((p) => isPidAlive(p.pid))) await new Promise((r) => setTimeout(r, 50));
}
