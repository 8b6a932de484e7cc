/**
 * The README's `npm start` path, end to end with real processes: CAs, enrollment, genesis, three
 * Raft orderers, the demo transaction; then Ctrl-C leaves no process behind. Also `network up
 * --detach` + `network down`. Runs on its own ports and data directory so it never meets a
 * network a developer has running.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const loom = join(root, 'packages/cli/dist/bin/loom.js');
const work = mkdtempSync(join(tmpdir(), 'loom-net-'));

/** The default network-config with every port moved by `offset`, its data dir in `work`. */
function shiftedConfig(offset: number): string {
  const text = readFileSync(join(root, 'network-config/default.yaml'), 'utf8')
    .replace(/(port|Port): (\d+)/g, (_, k: string, p: string) => `${k}: ${Number(p) + offset}`)
    .replace(/^dataDir: .*$/m, `dataDir: ${join(work, `data-${offset}`)}`)
    .replace(/path: \.\.\/chaincode\/basic/, `path: ${join(root, 'chaincode/basic')}`);
  const file = join(work, `net-${offset}.yaml`);
  writeFileSync(file, text);
  return file;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [loom, ...args], { cwd: root });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe.skipIf(!existsSync(loom))('loom start and loom network', () => {
  it('start: brings the network up, runs the demo, and Ctrl-C stops every process', async () => {
    const config = shiftedConfig(20000 - 7000);
    const child = spawn(process.execPath, [loom, 'start', '--config', config], { cwd: root });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const deadline = Date.now() + 90_000;
    while (!out.includes('Press Ctrl-C') && Date.now() < deadline && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(out, out).toContain('Press Ctrl-C');
    expect(out).toMatch(/committed by the Raft group in block \d+/);
    expect(out).toMatch(/hash chain to genesis OK/);
    expect(out).toMatch(/verified against OrdererMSP/);
    expect(out).toMatch(/Merkle audit path: OK/);
    const pids = JSON.parse(readFileSync(join(work, 'data-13000', 'pids.json'), 'utf8')) as { pid: number }[];
    expect(pids).toHaveLength(6);
    expect(pids.every((p) => alive(p.pid))).toBe(true);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).toContain('every process stopped');
    expect(pids.filter((p) => alive(p.pid))).toEqual([]);
  });

  it('network up --detach returns once ready; status lists it; down leaves no process behind', async () => {
    const config = shiftedConfig(21000 - 7000);
    const up = await run(['network', 'up', '--detach', '--config', config], 90_000);
    expect(up.code, up.out).toBe(0);
    expect(up.out).toContain("network 'loom' is up");
    const status = await run(['--json', 'network', 'status', '--config', config], 20_000);
    const rows = JSON.parse(status.out) as { pid: number; running: boolean }[];
    expect(rows).toHaveLength(6);
    expect(rows.every((r) => r.running)).toBe(true);
    // A second `up` on the same data directory is refused while the first runs.
    const again = await run(['network', 'up', '--detach', '--config', config], 30_000);
    expect(again.code).not.toBe(0);
    expect(again.out).toMatch(/already running/);
    const down = await run(['network', 'down', '--config', config], 30_000);
    expect(down.code, down.out).toBe(0);
    expect(rows.filter((r) => alive(r.pid))).toEqual([]);
  });

  it('a broken network-config is refused with the file, line and path named', async () => {
    const bad = join(work, 'bad.yaml');
    writeFileSync(
      bad,
      readFileSync(join(root, 'network-config/default.yaml'), 'utf8').replace('port: 7051', 'port: seventy'),
    );
    const r = await run(['network', 'up', '--config', bad], 20_000);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/bad\.yaml:\d+:\d+/);
    expect(r.out).toMatch(/organizations\[0\]\.peers\[0\]\.port/);
  });
});
