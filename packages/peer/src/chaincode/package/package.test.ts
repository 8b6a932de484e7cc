import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { utf8 } from '@loom/common';
import { afterEach, describe, expect, it } from 'vitest';
import { buildPackage, indexDefinitions, packageIdOf, parsePackage, parsePackageId } from './package.js';
import { createPackage } from './package-dir.js';
import { readTar, writeTar } from './tar.js';

const BASIC = fileURLToPath(new URL('../../../../../chaincode/basic', import.meta.url));
const invalid = expect.objectContaining({ code: 'CHAINCODE_PACKAGE_INVALID', httpStatus: 400 });

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function chaincodeDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'loom-cc-'));
  dirs.push(dir);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  return dir;
}

const PKG_JSON = JSON.stringify({ name: 'cc', version: '1.0.0', main: 'index.js' });

/** A raw ustar header block, for archives the writer refuses to produce. */
function rawHeader(name: string, type: string, size: number): Uint8Array {
  const h = new Uint8Array(512);
  const put = (off: number, s: string) => h.set(utf8(s), off);
  put(0, name);
  put(100, '0000644\0');
  put(108, '0000000\0');
  put(116, '0000000\0');
  put(124, `${size.toString(8).padStart(11, '0')}\0`);
  put(136, '00000000000\0');
  put(156, type);
  put(257, 'ustar\0');
  put(263, '00');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  put(148, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

function rawTar(entries: Array<{ name: string; type?: string; content?: string }>): Uint8Array {
  const parts: number[] = [];
  for (const e of entries) {
    const body = utf8(e.content ?? '');
    parts.push(...rawHeader(e.name, e.type ?? '0', body.length), ...body);
    parts.push(...new Uint8Array((512 - (body.length % 512)) % 512));
  }
  parts.push(...new Uint8Array(1024));
  return new Uint8Array(parts);
}

/** A package whose code.tar.gz is `code` (raw tar bytes). */
const packageWithCode = (code: Uint8Array, meta = { label: 'x_1', type: 'node' }) =>
  new Uint8Array(
    gzipSync(
      writeTar([
        { path: 'metadata.json', content: utf8(JSON.stringify(meta)) },
        { path: 'code.tar.gz', content: new Uint8Array(gzipSync(code)) },
      ]),
    ),
  );

describe('tar', () => {
  it('round-trips entries, sorted, including long paths', () => {
    const long = `${'d'.repeat(90)}/${'e'.repeat(60)}/f.txt`;
    const entries = [
      { path: 'b.txt', content: utf8('bee') },
      { path: 'a/x.bin', content: new Uint8Array(1000).fill(7) },
      { path: long, content: utf8('') },
    ];
    const back = readTar(writeTar(entries));
    expect(back.map((e) => e.path)).toEqual(['a/x.bin', 'b.txt', long]);
    expect(back[0]!.content).toEqual(entries[1]!.content);
  });

  it('rejects traversal, absolute paths, links, bad checksums and truncation', () => {
    expect(() => readTar(rawTar([{ name: '../evil', content: 'x' }]))).toThrow(/path traversal/);
    expect(() => readTar(rawTar([{ name: 'a/../../evil', content: 'x' }]))).toThrow(/path traversal/);
    expect(() => readTar(rawTar([{ name: '/etc/passwd', content: 'x' }]))).toThrow(/absolute/);
    expect(() => readTar(rawTar([{ name: 'link', type: '2' }]))).toThrow(/link/);
    expect(() => readTar(rawTar([{ name: 'hard', type: '1' }]))).toThrow(/link/);
    expect(() => readTar(rawTar([{ name: 'pax', type: 'x' }]))).toThrow(/only regular files/);
    const t = rawTar([{ name: 'a', content: 'hello' }]);
    const corrupt = t.slice();
    corrupt[0] = 0x62;
    expect(() => readTar(corrupt)).toThrow(/checksum/);
    expect(() => readTar(t.slice(0, 512 + 3))).toThrow(/truncated/);
    expect(() => readTar(rawTar([{ name: 'a' }, { name: 'a' }]))).toThrow(/duplicate/);
  });

  it('enforces size limits', () => {
    const t = rawTar([{ name: 'big', content: 'x'.repeat(2000) }]);
    expect(() => readTar(t, { maxEntryBytes: 1000, maxTotalBytes: 10_000, maxEntries: 10 })).toThrow(invalid);
    const many = rawTar([
      { name: 'a', content: 'x' },
      { name: 'b', content: 'y' },
    ]);
    expect(() => readTar(many, { maxEntryBytes: 100, maxTotalBytes: 100, maxEntries: 1 })).toThrow(/more than 1/);
  });
});

describe('chaincode packages', () => {
  it('the same directory gives the same package id; different content a different one', async () => {
    const a = await chaincodeDir({ 'package.json': PKG_JSON, 'index.js': 'export const x = 1;' });
    const b = await chaincodeDir({ 'index.js': 'export const x = 1;', 'package.json': PKG_JSON });
    const c = await chaincodeDir({ 'package.json': PKG_JSON, 'index.js': 'export const x = 2;' });
    const pa = await createPackage(a, 'cc_1.0');
    expect(packageIdOf('cc_1.0', pa)).toBe(packageIdOf('cc_1.0', await createPackage(a, 'cc_1.0')));
    expect(packageIdOf('cc_1.0', pa)).toBe(packageIdOf('cc_1.0', await createPackage(b, 'cc_1.0')));
    expect(packageIdOf('cc_1.0', pa)).not.toBe(packageIdOf('cc_1.0', await createPackage(c, 'cc_1.0')));
    // The label is inside metadata.json, so it changes the hash too.
    expect(parsePackageId(packageIdOf('cc_1.1', await createPackage(a, 'cc_1.1'))).hash).not.toBe(
      parsePackageId(packageIdOf('cc_1.0', pa)).hash,
    );
  });

  it('round-trips chaincode/basic: source under src/, indexes under META-INF/, no node_modules or dist', async () => {
    const bytes = await createPackage(BASIC, 'basic_1.0', 'node');
    const pkg = parsePackage(bytes);
    expect(pkg).toMatchObject({ label: 'basic_1.0', type: 'node', packageId: packageIdOf('basic_1.0', bytes) });
    expect(pkg.files.has('src/package.json')).toBe(true);
    expect(pkg.files.has('src/src/assetTransfer.ts')).toBe(true);
    expect(pkg.files.has('src/tsconfig.json')).toBe(true);
    expect([...pkg.files.keys()].some((p) => p.includes('node_modules') || p.startsWith('src/dist/'))).toBe(false);
    const idx = indexDefinitions(pkg.files);
    expect(idx).toHaveLength(1);
    expect(idx[0]).toMatchObject({
      collection: undefined,
      definition: { name: 'indexOwner', fields: ['docType', 'Owner'] },
    });
  });

  it('finds collection indexes and rejects malformed ones', () => {
    const files = new Map([
      ['META-INF/statedb/couchdb/collections/priv/indexes/i.json', utf8('{"index":{"fields":["a"]},"name":"i"}')],
    ]);
    expect(indexDefinitions(files)).toEqual([expect.objectContaining({ collection: 'priv' })]);
    files.set('META-INF/statedb/couchdb/indexes/bad.json', utf8('{"index":{}}'));
    expect(() => indexDefinitions(files)).toThrow(invalid);
  });

  it('packages ccaas with connection.json', async () => {
    const dir = await chaincodeDir({
      'connection.json': JSON.stringify({ address: 'basic:9999', dial_timeout: '10s' }),
    });
    const pkg = parsePackage(await createPackage(dir, 'basic_ccaas', 'ccaas'));
    expect(pkg.type).toBe('ccaas');
    expect(pkg.connection).toMatchObject({ address: 'basic:9999', dialTimeout: '10s', tlsRequired: false });
    const bad = await chaincodeDir({ 'connection.json': JSON.stringify({ address: 'no-port' }) });
    await expect(createPackage(bad, 'x', 'ccaas')).rejects.toThrow(/host:port/);
  });

  it('refuses to package symbolic links and bad labels', async () => {
    const dir = await chaincodeDir({ 'package.json': PKG_JSON, 'index.js': '' });
    await symlink('/etc/passwd', join(dir, 'passwd'));
    await expect(createPackage(dir, 'cc')).rejects.toThrow(/symbolic link/);
    const ok = await chaincodeDir({ 'package.json': PKG_JSON });
    await expect(createPackage(ok, 'bad label')).rejects.toThrow(invalid);
    await expect(createPackage(ok, 'a:b')).rejects.toThrow(invalid);
  });

  it('rejects malformed packages with CHAINCODE_PACKAGE_INVALID', () => {
    const good = buildPackage({
      label: 'x_1',
      type: 'node',
      files: [{ path: 'src/package.json', content: utf8('{}') }],
    });
    expect(parsePackage(good).label).toBe('x_1');
    expect(() => parsePackage(utf8('garbage garbage garbage'))).toThrow(invalid);
    expect(() => parsePackage(new Uint8Array(gzipSync(utf8('not a tar'.repeat(100)))))).toThrow(invalid);
    expect(() => parsePackage(good.slice(0, good.length - 10))).toThrow(invalid);
    // Missing metadata / extra files / bad label / unknown type / missing package.json.
    const only = (entries: Array<{ path: string; content: Uint8Array }>) => new Uint8Array(gzipSync(writeTar(entries)));
    expect(() =>
      parsePackage(only([{ path: 'code.tar.gz', content: new Uint8Array(gzipSync(writeTar([]))) }])),
    ).toThrow(/no metadata.json/);
    expect(() =>
      parsePackage(
        only([
          { path: 'metadata.json', content: utf8('{"label":"x","type":"node"}') },
          { path: 'evil.sh', content: utf8('') },
        ]),
      ),
    ).toThrow(/unexpected files/);
    const code = rawTar([{ name: 'src/package.json', content: '{}' }]);
    expect(() => parsePackage(packageWithCode(code, { label: 'bad/label', type: 'node' }))).toThrow(
      /invalid package label/,
    );
    expect(() => parsePackage(packageWithCode(code, { label: 'x', type: 'golang' }))).toThrow(
      /unsupported chaincode type/,
    );
    expect(() => parsePackage(packageWithCode(rawTar([{ name: 'src/index.js', content: '' }])))).toThrow(
      /no src\/package.json/,
    );
  });

  it('rejects traversal, links and oversize content inside code.tar.gz', () => {
    const evil = rawTar([
      { name: 'src/package.json', content: '{}' },
      { name: 'src/../../../../tmp/pwned', content: 'x' },
    ]);
    expect(() => parsePackage(packageWithCode(evil))).toThrow(/path traversal/);
    const link = rawTar([
      { name: 'src/package.json', content: '{}' },
      { name: 'src/l', type: '2' },
    ]);
    expect(() => parsePackage(packageWithCode(link))).toThrow(/link/);
    const big = rawTar([{ name: 'src/package.json', content: `{"x":"${'a'.repeat(5000)}"}` }]);
    expect(() =>
      parsePackage(packageWithCode(big), { maxEntryBytes: 4096, maxTotalBytes: 8192, maxEntries: 10 }),
    ).toThrow(invalid);
    // A gzip bomb: decompresses past the total limit.
    const bomb = new Uint8Array(gzipSync(new Uint8Array(4 * 1024 * 1024)));
    const pkg = new Uint8Array(
      gzipSync(
        writeTar([
          { path: 'metadata.json', content: utf8('{"label":"x","type":"node"}') },
          { path: 'code.tar.gz', content: bomb },
        ]),
      ),
    );
    expect(() => parsePackage(pkg, { maxEntryBytes: 1 << 20, maxTotalBytes: 1 << 20, maxEntries: 10 })).toThrow(
      invalid,
    );
  });

  it('validates package ids', () => {
    expect(parsePackageId(`basic_1.0:${'a'.repeat(64)}`)).toEqual({ label: 'basic_1.0', hash: 'a'.repeat(64) });
    expect(() => parsePackageId('basic_1.0')).toThrow(invalid);
    expect(() => parsePackageId(`../x:${'a'.repeat(64)}`)).toThrow(invalid);
  });
});
