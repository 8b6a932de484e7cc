/**
 * A small, strict POSIX ustar reader and writer for chaincode packages. Pure (bytes in, bytes out).
 *
 * The writer is deterministic: entries sorted by path, mode 0644, uid/gid 0, empty owner names and
 * mtime 0, so the same files always give the same bytes (and the same package id).
 *
 * The reader accepts regular files and directories only. It rejects, rather than skips: links and
 * device entries, pax/GNU extension headers, absolute paths, `..` segments, duplicate paths, bad
 * header checksums, truncated archives, and entries or totals over the given limits. A package is
 * input from another organization; nothing in it may escape the directory it is extracted into.
 */
import { LoomError } from '@loom/common';

export interface TarEntry {
  readonly path: string;
  readonly content: Uint8Array;
}

export interface TarLimits {
  /** Largest single file, in bytes. */
  readonly maxEntryBytes: number;
  /** Largest sum of file sizes, in bytes. */
  readonly maxTotalBytes: number;
  readonly maxEntries: number;
}

export const DEFAULT_TAR_LIMITS: TarLimits = {
  maxEntryBytes: 64 * 1024 * 1024,
  maxTotalBytes: 256 * 1024 * 1024,
  maxEntries: 20_000,
};

const BLOCK = 512;
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export function tarError(message: string, details: Record<string, unknown> = {}): LoomError {
  return new LoomError('CHAINCODE_PACKAGE_INVALID', message, { details, httpStatus: 400 });
}

/** Throws unless `path` is a relative path of plain segments (no `.`/`..`, empty, absolute or NUL). */
export function checkEntryPath(path: string): void {
  const bad = (why: string) => tarError(`archive entry ${JSON.stringify(path)}: ${why}`, { path });
  if (path.length === 0) throw bad('empty path');
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) throw bad('absolute path');
  if (path.includes('\\')) throw bad('backslash in path');
  if (path.includes('\u0000')) throw bad('NUL in path');
  for (const seg of path.split('/')) {
    if (seg === '..') throw bad('path traversal');
    if (seg === '' || seg === '.') throw bad('empty or "." path segment');
  }
}

function writeString(h: Uint8Array, offset: number, length: number, s: string): void {
  const b = enc.encode(s);
  if (b.length > length) throw tarError(`tar header field too long: ${JSON.stringify(s)}`);
  h.set(b, offset);
}

function writeOctal(h: Uint8Array, offset: number, length: number, n: number): void {
  // length-1 octal digits, then NUL.
  const s = n.toString(8).padStart(length - 1, '0');
  if (s.length > length - 1) throw tarError(`value ${n} does not fit a tar header field`);
  writeString(h, offset, length, s);
}

/** Splits a path over ustar's `prefix` (155) and `name` (100) fields. */
function splitName(path: string): [prefix: string, name: string] {
  if (enc.encode(path).length <= 100) return ['', path];
  for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (enc.encode(prefix).length <= 155 && enc.encode(name).length <= 100 && name.length > 0) return [prefix, name];
  }
  throw tarError(`path too long for ustar: ${path}`, { path });
}

function header(path: string, size: number): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const [prefix, name] = splitName(path);
  writeString(h, 0, 100, name);
  writeOctal(h, 100, 8, 0o644);
  writeOctal(h, 108, 8, 0);
  writeOctal(h, 116, 8, 0);
  writeOctal(h, 124, 12, size);
  writeOctal(h, 136, 12, 0);
  h[156] = 0x30; // '0': regular file
  writeString(h, 257, 6, 'ustar\u0000');
  writeString(h, 263, 2, '00');
  writeString(h, 345, 155, prefix);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  writeString(h, 148, 8, `${sum.toString(8).padStart(6, '0')}\u0000 `);
  return h;
}

/** A ustar archive of `entries`, sorted by path, with fixed metadata. */
export function writeTar(entries: readonly TarEntry[]): Uint8Array {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts: Uint8Array[] = [];
  let total = 0;
  let prev: string | undefined;
  for (const e of sorted) {
    checkEntryPath(e.path);
    if (e.path === prev) throw tarError(`duplicate archive entry ${e.path}`, { path: e.path });
    prev = e.path;
    parts.push(header(e.path, e.content.length), e.content);
    const pad = (BLOCK - (e.content.length % BLOCK)) % BLOCK;
    if (pad > 0) parts.push(new Uint8Array(pad));
    total += BLOCK + e.content.length + pad;
  }
  parts.push(new Uint8Array(2 * BLOCK));
  total += 2 * BLOCK;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function readString(h: Uint8Array, offset: number, length: number): string {
  let end = offset;
  while (end < offset + length && h[end] !== 0) end++;
  try {
    return dec.decode(h.subarray(offset, end));
  } catch {
    throw tarError('tar header field is not UTF-8');
  }
}

function readOctal(h: Uint8Array, offset: number, length: number, what: string): number {
  // Base-256 (high bit set) only appears for sizes far over any limit we accept.
  if ((h[offset]! & 0x80) !== 0) throw tarError(`tar ${what} in base-256 encoding is not supported`);
  const s = readString(h, offset, length).trim();
  if (!/^[0-7]*$/.test(s)) throw tarError(`tar ${what} is not octal: ${JSON.stringify(s)}`);
  return s.length === 0 ? 0 : Number.parseInt(s, 8);
}

/** Reads a ustar archive into its regular files, in archive order. Directories are dropped. */
export function readTar(bytes: Uint8Array, limits: TarLimits = DEFAULT_TAR_LIMITS): TarEntry[] {
  const out: TarEntry[] = [];
  const seen = new Set<string>();
  let total = 0;
  let off = 0;
  for (;;) {
    if (off + BLOCK > bytes.length) throw tarError('truncated archive: no end-of-archive marker');
    const h = bytes.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) {
      // End of archive: two zero blocks (one is tolerated at the very end, as some writers do).
      const rest = bytes.subarray(off);
      if (!rest.every((b) => b === 0)) throw tarError('data after end-of-archive marker');
      return out;
    }
    const magic = readString(h, 257, 6);
    if (magic !== 'ustar' && !(magic === 'ustar ' && h[263] === 0x20)) {
      throw tarError('not a ustar archive (bad magic)');
    }
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    if (readOctal(h, 148, 8, 'checksum') !== sum) throw tarError('tar header checksum mismatch');
    const name = readString(h, 0, 100);
    const prefix = magic === 'ustar' ? readString(h, 345, 155) : '';
    const rawPath = prefix ? `${prefix}/${name}` : name;
    const type = String.fromCharCode(h[156]!);
    const size = readOctal(h, 124, 12, 'size');
    off += BLOCK;
    const path = rawPath.replace(/^(\.\/)+/, '').replace(/\/$/, '');
    if (type === '5') {
      if (path !== '' && path !== '.') checkEntryPath(path);
      off += Math.ceil(size / BLOCK) * BLOCK;
      continue;
    }
    if (type !== '0' && type !== '\u0000') {
      const kind = type === '1' || type === '2' ? 'link' : `type '${type}'`;
      throw tarError(`archive entry ${JSON.stringify(rawPath)} is a ${kind}; only regular files are allowed`, {
        path: rawPath,
      });
    }
    checkEntryPath(path);
    if (seen.has(path)) throw tarError(`duplicate archive entry ${path}`, { path });
    seen.add(path);
    if (size > limits.maxEntryBytes) throw tarError(`archive entry ${path} is over ${limits.maxEntryBytes} bytes`);
    total += size;
    if (total > limits.maxTotalBytes) throw tarError(`archive content is over ${limits.maxTotalBytes} bytes`);
    if (out.length + 1 > limits.maxEntries) throw tarError(`archive has more than ${limits.maxEntries} entries`);
    if (off + size > bytes.length) throw tarError(`truncated archive in ${path}`);
    out.push({ path, content: bytes.slice(off, off + size) });
    off += Math.ceil(size / BLOCK) * BLOCK;
  }
}
