/**
 * The SDK must run in a browser: no `node:` import anywhere it reaches, except the Node-only
 * modules (transport-node.ts, file-checkpointer.ts, signers-node.ts), which index.ts never imports
 * statically.
 * The scan follows every static import from the SDK's sources into @loom/common.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const packagesDir = resolve(here, '../..');
const NODE_ONLY = new Set(['transport-node.ts', 'file-checkpointer.ts', 'signers-node.ts']);
/** Bare packages the portable SDK may use (pure JavaScript, browser-ready; zod via common's channel config). */
const ALLOWED_PACKAGES = [/^@noble\//, /^cborg(\/|$)/, /^zod(\/|$)/];

// `import … from '…'`, `export … from '…'`, `import '…'`: static imports that survive compilation
// (`import type` is erased); a dynamic `import('./transport-node.js')` is how connect() loads the
// Node transport on demand.
const STATIC_IMPORT = /(?:^|\n)\s*(import|export)\s(type\s)?(?:[^'"`;]*?\sfrom\s)?['"]([^'"]+)['"]/g;

function staticImports(file: string): string[] {
  const src = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
  return [...src.matchAll(STATIC_IMPORT)].filter((m) => m[2] === undefined).map((m) => m[3]!);
}

function resolveImport(from: string, spec: string): string | undefined {
  if (spec.startsWith('.')) return resolve(dirname(from), spec.replace(/\.js$/, '.ts'));
  const m = /^@loom\/([a-z-]+)(?:\/(.+))?$/.exec(spec);
  if (m) return join(packagesDir, m[1]!, 'src', `${m[2] ?? 'index'}.ts`);
  return undefined;
}

/** Every file reachable from `entry` by static imports, and each bare import found on the way. */
function reach(entry: string): { files: Set<string>; offenders: string[] } {
  const files = new Set<string>();
  const offenders: string[] = [];
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const spec of staticImports(file)) {
      const target = resolveImport(file, spec);
      if (target) {
        if (!existsSync(target)) offenders.push(`${relative(packagesDir, file)}: unresolved ${spec}`);
        else visit(target);
      } else if (!ALLOWED_PACKAGES.some((re) => re.test(spec))) {
        offenders.push(`${relative(packagesDir, file)}: ${spec}`);
      }
    }
  };
  visit(entry);
  return { files, offenders };
}

const sdkSources = readdirSync(here).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));

describe('client SDK portability', () => {
  it('only the Node-only modules (transport, file checkpointer, native signer) import node: directly', () => {
    const direct = sdkSources.filter(
      (f) => !NODE_ONLY.has(f) && staticImports(join(here, f)).some((s) => s.startsWith('node:')),
    );
    expect(direct).toEqual([]);
    // The allowance is not a blank cheque: the Node modules really are the Node ones.
    expect(staticImports(join(here, 'file-checkpointer.ts')).some((s) => s.startsWith('node:'))).toBe(true);
  });

  it('nothing index.ts reaches imports node:, fastify, or any non-portable package', () => {
    const { files, offenders } = reach(join(here, 'index.ts'));
    expect(offenders).toEqual([]);
    for (const f of NODE_ONLY) expect(files.has(join(here, f))).toBe(false);
    // Sanity: the scan did follow the imports into common's gateway contract and ledger proofs.
    expect([...files].some((f) => f.endsWith(join('common', 'src', 'gateway', 'routes.ts')))).toBe(true);
    expect([...files].some((f) => f.endsWith(join('common', 'src', 'ledger-proofs.ts')))).toBe(true);
  });

  it('every portable SDK module is reachable only through portable code', () => {
    for (const f of sdkSources.filter((s) => !NODE_ONLY.has(s))) {
      expect({ file: f, offenders: reach(join(here, f)).offenders }).toEqual({ file: f, offenders: [] });
    }
  });
});
