import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageIdOf } from '@loom/peer/chaincode/package/index';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerChaincodePackageCommand } from './chaincode-package.js';

const BASIC = fileURLToPath(new URL('../../../../chaincode/basic', import.meta.url));
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loom-cli-cc-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(...args: string[]): Promise<string> {
  const program = new Command('loom').option('--json').exitOverride();
  registerChaincodePackageCommand(program);
  const lines: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    lines.push(String(s));
    return true;
  });
  try {
    await program.parseAsync(['node', 'loom', ...args]);
  } finally {
    spy.mockRestore();
  }
  return lines.join('');
}

describe('loom chaincode package / calculatepackageid', () => {
  it('packages a directory, prints the id, and calculatepackageid agrees', async () => {
    const out = join(dir, 'basic.tar.gz');
    const id = (await run('chaincode', 'package', BASIC, '--label', 'basic_1.0', '-o', out)).trim();
    expect(id).toBe(packageIdOf('basic_1.0', new Uint8Array(await readFile(out))));
    expect((await run('chaincode', 'calculatepackageid', out)).trim()).toBe(id);
    const json = JSON.parse(await run('--json', 'chaincode', 'calculatepackageid', out));
    expect(json).toEqual({ packageId: id, label: 'basic_1.0', type: 'node' });
  });

  it('rejects a file that is not a package', async () => {
    const bad = join(dir, 'bad.tar.gz');
    await writeFile(bad, 'nope');
    await expect(run('chaincode', 'calculatepackageid', bad)).rejects.toMatchObject({
      code: 'CHAINCODE_PACKAGE_INVALID',
    });
  });
});
