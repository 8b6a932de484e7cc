/**
 * Packaging a chaincode directory (the `loom chaincode package` step). Reads the directory and hands
 * the files to the pure `buildPackage`.
 *
 * - `node`: every regular file goes under `src/` except `META-INF/` (kept at the top, where Fabric
 *   puts it), `node_modules/`, `.git/`, and `dist/` when package.json has a `build` script (the peer
 *   builds from source at install). Symbolic links are refused rather than followed.
 * - `ccaas`: `connection.json` and `META-INF/` only.
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fromUtf8, LoomError } from '@loom/common';
import { buildPackage, type ChaincodeType, ChaincodePackageErrorCode } from './package.js';
import type { TarEntry } from './tar.js';

const ALWAYS_EXCLUDED = new Set(['node_modules', '.git']);

async function walk(root: string, rel: string, skip: (rel: string) => boolean, out: TarEntry[]): Promise<void> {
  const names = (await readdir(join(root, rel))).sort();
  for (const name of names) {
    const path = rel ? `${rel}/${name}` : name;
    if (skip(path)) continue;
    const st = await lstat(join(root, path));
    if (st.isSymbolicLink()) {
      throw new LoomError(ChaincodePackageErrorCode.INVALID, `refusing to package symbolic link ${path}`, {
        details: { path },
      });
    }
    if (st.isDirectory()) await walk(root, path, skip, out);
    else if (st.isFile()) out.push({ path, content: new Uint8Array(await readFile(join(root, path))) });
  }
}

/** Reads the files of a chaincode directory as code.tar.gz entries for `type`. */
export async function readChaincodeDir(dir: string, type: ChaincodeType): Promise<TarEntry[]> {
  const files: TarEntry[] = [];
  if (type === 'ccaas') {
    await walk(dir, '', (p) => p !== 'connection.json' && p !== 'META-INF' && !p.startsWith('META-INF/'), files);
    return files;
  }
  let hasBuild = false;
  try {
    const pkg = JSON.parse(fromUtf8(await readFile(join(dir, 'package.json')))) as { scripts?: { build?: unknown } };
    hasBuild = typeof pkg.scripts?.build === 'string';
  } catch (e) {
    throw new LoomError(ChaincodePackageErrorCode.INVALID, `${dir}/package.json: ${(e as Error).message}`, {
      details: { dir },
    });
  }
  await walk(
    dir,
    '',
    (p) => ALWAYS_EXCLUDED.has(p.split('/').pop()!) || (hasBuild && p === 'dist') || p.endsWith('.tsbuildinfo'),
    files,
  );
  return files.map((f) => (f.path.startsWith('META-INF/') ? f : { path: `src/${f.path}`, content: f.content }));
}

/** `loom chaincode package`: the package bytes for a chaincode directory. */
export async function createPackage(dir: string, label: string, type: ChaincodeType = 'node'): Promise<Uint8Array> {
  return buildPackage({ label, type, files: await readChaincodeDir(dir, type) });
}
