/**
 * A minimal strict DER reader: definite lengths only, minimal length encodings, no trailing bytes
 * where the caller asks for a whole value. Enough to walk signatures, keys, SPKI and CRLs; certificates
 * themselves are parsed by @peculiar/x509. Pure and browser-portable.
 */
export interface DerElement {
  /** The identifier octet (single-byte tags only: every structure Loom reads uses them). */
  readonly tag: number;
  /** Offset of the first content byte. */
  readonly start: number;
  /** Offset just past the last content byte. */
  readonly end: number;
  /** Offset of the identifier octet. */
  readonly headerStart: number;
}

export const DerTag = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

export class DerError extends Error {
  override name = 'DerError';
}

/** Reads one element at `offset`; throws DerError on anything that is not strict DER. */
export function readDer(buf: Uint8Array, offset = 0, limit = buf.length): DerElement {
  if (offset + 2 > limit) throw new DerError('truncated DER header');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte DER tags are not supported');
  let len = buf[offset + 1]!;
  let p = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new DerError('indefinite length is not DER');
    if (n > 4) throw new DerError('DER length too large');
    if (p + n > limit) throw new DerError('truncated DER length');
    if (buf[p] === 0) throw new DerError('non-minimal DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!;
    if (len < 0x80) throw new DerError('non-minimal DER length');
    p += n;
  }
  if (p + len > limit) throw new DerError('truncated DER value');
  return { tag, start: p, end: p + len, headerStart: offset };
}

/** Reads exactly one element spanning the whole buffer (no trailing bytes). */
export function readDerWhole(buf: Uint8Array, tag?: number): DerElement {
  const el = readDer(buf, 0);
  if (el.end !== buf.length) throw new DerError('trailing bytes after DER value');
  if (tag !== undefined && el.tag !== tag) throw new DerError(`expected DER tag 0x${tag.toString(16)}`);
  return el;
}

/** The elements directly inside a constructed element. */
export function derChildren(buf: Uint8Array, parent: DerElement): DerElement[] {
  const out: DerElement[] = [];
  let p = parent.start;
  while (p < parent.end) {
    const el = readDer(buf, p, parent.end);
    out.push(el);
    p = el.end;
  }
  return out;
}

export function derContent(buf: Uint8Array, el: DerElement): Uint8Array {
  return buf.subarray(el.start, el.end);
}

/** The whole encoding of an element, header included. */
export function derEncoded(buf: Uint8Array, el: DerElement): Uint8Array {
  return buf.subarray(el.headerStart, el.end);
}

export function expectTag(el: DerElement | undefined, tag: number, what: string): DerElement {
  if (el === undefined || el.tag !== tag) throw new DerError(`${what}: expected DER tag 0x${tag.toString(16)}`);
  return el;
}

/** Dotted-decimal form of an OBJECT IDENTIFIER's content bytes. */
export function decodeOid(content: Uint8Array): string {
  if (content.length === 0) throw new DerError('empty OID');
  const parts: number[] = [];
  let v = 0;
  for (let i = 0; i < content.length; i++) {
    const b = content[i]!;
    if (v === 0 && b === 0x80) throw new DerError('non-minimal OID arc');
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      if (parts.length === 0) {
        const first = v < 40 ? 0 : v < 80 ? 1 : 2;
        parts.push(first, v - first * 40);
      } else parts.push(v);
      v = 0;
    }
  }
  if (content[content.length - 1]! & 0x80) throw new DerError('truncated OID');
  return parts.join('.');
}

/** Encodes a DER length + value under `tag`. */
export function encodeDer(tag: number, content: Uint8Array): Uint8Array {
  const n = content.length;
  let header: number[];
  if (n < 0x80) header = [tag, n];
  else if (n < 0x100) header = [tag, 0x81, n];
  else if (n < 0x10000) header = [tag, 0x82, n >> 8, n & 0xff];
  else header = [tag, 0x83, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
  const out = new Uint8Array(header.length + n);
  out.set(header, 0);
  out.set(content, header.length);
  return out;
}

// ---- PEM ----

export interface PemBlock {
  readonly label: string;
  readonly der: Uint8Array;
}

const pemRe = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** Every PEM block in `text`, in order. Text between blocks is ignored, as OpenSSL does. */
export function decodePemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(pemRe)) {
    const body = m[2]!.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) throw new DerError('invalid base64 in PEM');
    out.push({ label: m[1]!, der: base64Decode(body) });
  }
  return out;
}

export function encodePem(label: string, der: Uint8Array): string {
  const b64 = base64Encode(der);
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function base64Decode(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function base64Encode(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}
