/**
 * CouchDB's collation order over JSON values, and a byte encoding that sorts the same way (for
 * index keys). Pure.
 *
 * Order across types: null < false < true < numbers < strings < arrays < objects. Numbers compare
 * numerically; arrays element by element, then by length; objects entry by entry in their key order
 * (key, then value), then by entry count. Strings compare by Unicode code point — CouchDB uses ICU
 * collation (where "a" < "B"); Loom deliberately uses code point order, the same order as state
 * keys, so that results do not depend on an ICU version.
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function typeRank(v: Json): number {
  if (v === null) return 0;
  if (v === false) return 1;
  if (v === true) return 2;
  switch (typeof v) {
    case 'number':
      return 3;
    case 'string':
      return 4;
    default:
      return Array.isArray(v) ? 5 : 6;
  }
}

/** Code point order (= UTF-8 byte order); plain `<` compares UTF-16 code units. */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

export function compareJson(a: Json, b: Json): number {
  const ra = typeRank(a);
  const rb = typeRank(b);
  if (ra !== rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 3: {
      const x = a as number;
      const y = b as number;
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 4:
      return compareStrings(a as string, b as string);
    case 5: {
      const x = a as Json[];
      const y = b as Json[];
      const n = Math.min(x.length, y.length);
      for (let i = 0; i < n; i++) {
        const c = compareJson(x[i]!, y[i]!);
        if (c !== 0) return c;
      }
      return x.length < y.length ? -1 : x.length > y.length ? 1 : 0;
    }
    case 6: {
      const x = Object.entries(a as JsonObject);
      const y = Object.entries(b as JsonObject);
      const n = Math.min(x.length, y.length);
      for (let i = 0; i < n; i++) {
        const c = compareStrings(x[i]![0], y[i]![0]) || compareJson(x[i]![1], y[i]![1]);
        if (c !== 0) return c;
      }
      return x.length < y.length ? -1 : x.length > y.length ? 1 : 0;
    }
    default:
      return 0;
  }
}

const textEncoder = new TextEncoder();

/**
 * A self-delimiting encoding whose byte order is `compareJson` order, and where equal values (per
 * `compareJson`) encode identically. Tags 0x01..0x07 by type rank; 0x00 terminates arrays and
 * objects, so a shorter prefix sorts first. Strings: UTF-8 with 0x00 escaped as 0x00 0xff and
 * terminated by 0x00 0x01. Numbers: IEEE-754 big-endian with the sign bit flipped (all bits for
 * negatives), -0 written as 0.
 */
export function encodeCollationKey(v: Json): Uint8Array {
  const out: number[] = [];
  encodeInto(v, out);
  return Uint8Array.from(out);
}

function encodeString(s: string, out: number[]): void {
  for (const byte of textEncoder.encode(s)) {
    if (byte === 0) out.push(0, 0xff);
    else out.push(byte);
  }
  out.push(0, 1);
}

function encodeInto(v: Json, out: number[]): void {
  const rank = typeRank(v);
  out.push(rank + 1);
  switch (rank) {
    case 3: {
      const n = v === 0 ? 0 : (v as number);
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, n);
      if (b[0]! & 0x80) for (let i = 0; i < 8; i++) b[i] = ~b[i]! & 0xff;
      else b[0] = b[0]! | 0x80;
      out.push(...b);
      return;
    }
    case 4:
      encodeString(v as string, out);
      return;
    case 5:
      for (const e of v as Json[]) encodeInto(e, out);
      out.push(0);
      return;
    case 6:
      for (const [k, e] of Object.entries(v as JsonObject)) {
        out.push(5);
        encodeString(k, out);
        encodeInto(e, out);
      }
      out.push(0);
      return;
    default:
      return;
  }
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });

/**
 * A state value as a queryable JSON document: a JSON object. Anything else (binary values, JSON
 * arrays or scalars) is not a document and never matches a rich query, as in Fabric with CouchDB.
 */
export function parseDocument(value: Uint8Array): JsonObject | undefined {
  if (
    value.length === 0 ||
    (value[0] !== 0x7b && value[0] !== 0x20 && value[0] !== 0x0a && value[0] !== 0x0d && value[0] !== 0x09)
  ) {
    return undefined;
  }
  try {
    const doc: unknown = JSON.parse(textDecoder.decode(value));
    return doc !== null && typeof doc === 'object' && !Array.isArray(doc) ? (doc as JsonObject) : undefined;
  } catch {
    return undefined;
  }
}
