/**
 * Mango selectors (CouchDB `_find`, as Fabric chaincode uses them through `getQueryResult`): parsing
 * into a small tree and matching JSON documents. Pure: no I/O.
 *
 * Semantics follow CouchDB's mango:
 * - `{"a": 1}` is `{"a": {"$eq": 1}}`; several fields are an implicit `$and`; `{"a": {"b": 1}}` is
 *   `{"a.b": 1}`; dotted paths reach into nested objects (`\.` is a literal dot) and numeric segments
 *   index arrays.
 * - A missing field fails every condition except `{"$exists": false}` (so `$ne` and `$nin` do not
 *   match documents without the field). `$not` negates the whole field condition, so
 *   `{"a": {"$not": {"$eq": 1}}}` matches a document without `a`.
 * - Comparisons use CouchDB collation across types (collation.ts): `{"$gt": 5}` also matches strings.
 * - Equality is not array membership: use `$elemMatch`, `$all` or `$in` (which, on an array field,
 *   matches when any element is one of the arguments).
 */
import { LoomError } from '@loom/common';
import { compareJson, type Json, type JsonObject, typeRank } from './collation.js';

export type RangeOp = '$gt' | '$gte' | '$lt' | '$lte';
export type Condition =
  | { op: '$eq' | '$ne' | RangeOp; value: Json }
  | { op: '$in' | '$nin' | '$all'; values: Json[] }
  | { op: '$exists'; value: boolean }
  | { op: '$regex'; regex: RegExp }
  | { op: '$size'; value: number }
  | { op: '$type'; value: JsonTypeName }
  | { op: '$mod'; divisor: number; remainder: number }
  | { op: '$elemMatch' | '$allMatch'; selector: Selector };

export type Selector =
  | { kind: 'and' | 'or' | 'nor'; nodes: Selector[] }
  | { kind: 'not'; node: Selector }
  | { kind: 'field'; path: string[]; cond: Condition };

export type JsonTypeName = 'null' | 'boolean' | 'number' | 'string' | 'array' | 'object';
const typeNames = new Set<string>(['null', 'boolean', 'number', 'string', 'array', 'object']);

export const QUERY_INVALID = 'QUERY_INVALID';

export function queryInvalid(message: string, details: Record<string, unknown> = {}): LoomError {
  return new LoomError(QUERY_INVALID, message, { details, httpStatus: 400 });
}

function isPlainObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Checks that `v` is JSON data (no undefined, functions, NaN, Infinity ...). */
function checkJson(v: unknown, where: string): Json {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw queryInvalid(`${where}: numbers must be finite`);
    return v;
  }
  if (Array.isArray(v)) {
    for (const x of v) checkJson(x, where);
    return v as Json[];
  }
  if (isPlainObject(v)) {
    for (const x of Object.values(v)) checkJson(x, where);
    return v;
  }
  throw queryInvalid(`${where}: not a JSON value`);
}

/** Splits `a.b\.c` into ["a", "b.c"]. */
export function splitPath(field: string): string[] {
  if (field.length === 0) throw queryInvalid('empty field name');
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < field.length; i++) {
    const c = field[i]!;
    if (c === '\\' && field[i + 1] === '.') {
      cur += '.';
      i++;
    } else if (c === '.') {
      out.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  out.push(cur);
  if (out.some((s) => s.length === 0)) throw queryInvalid(`invalid field name ${JSON.stringify(field)}`);
  return out;
}

/** Parses a selector object; throws QUERY_INVALID on anything malformed. */
export function parseSelector(selector: unknown): Selector {
  if (!isPlainObject(selector)) throw queryInvalid('selector must be a JSON object');
  return parseObject(selector, [], false);
}

function and(nodes: Selector[]): Selector {
  return nodes.length === 1 ? nodes[0]! : { kind: 'and', nodes };
}

function parseObject(obj: JsonObject, base: string[], allowOpsAtRoot: boolean): Selector {
  const nodes: Selector[] = [];
  for (const [key, arg] of Object.entries(obj)) {
    if (key === '$and' || key === '$or' || key === '$nor') {
      if (!Array.isArray(arg) || !arg.every(isPlainObject)) {
        throw queryInvalid(`${key} takes an array of selectors`, { operator: key });
      }
      if (key !== '$and' && arg.length === 0) throw queryInvalid(`${key} needs at least one selector`);
      nodes.push({
        kind: key.slice(1) as 'and' | 'or' | 'nor',
        nodes: (arg as JsonObject[]).map((s) => parseObject(s, base, allowOpsAtRoot)),
      });
    } else if (key === '$not') {
      if (!isPlainObject(arg)) throw queryInvalid('$not takes a selector', { operator: key });
      nodes.push({ kind: 'not', node: parseObject(arg, base, allowOpsAtRoot) });
    } else if (key.startsWith('$')) {
      if (base.length === 0 && !allowOpsAtRoot) {
        throw queryInvalid(`operator ${key} must apply to a field`, { operator: key });
      }
      nodes.push({ kind: 'field', path: base, cond: parseCondition(key, arg) });
    } else {
      const path = [...base, ...splitPath(key)];
      if (isPlainObject(arg) && Object.keys(arg).length > 0) nodes.push(parseObject(arg, path, allowOpsAtRoot));
      else nodes.push({ kind: 'field', path, cond: { op: '$eq', value: checkJson(arg, key) } });
    }
  }
  return and(nodes);
}

function parseCondition(op: string, arg: Json): Condition {
  switch (op) {
    case '$eq':
    case '$ne':
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte':
      return { op, value: checkJson(arg, op) };
    case '$in':
    case '$nin':
    case '$all':
      if (!Array.isArray(arg)) throw queryInvalid(`${op} takes an array`, { operator: op });
      return { op, values: arg.map((x) => checkJson(x, op)) };
    case '$exists':
      if (typeof arg !== 'boolean') throw queryInvalid('$exists takes true or false', { operator: op });
      return { op, value: arg };
    case '$regex': {
      if (typeof arg !== 'string') throw queryInvalid('$regex takes a string', { operator: op });
      try {
        return { op, regex: new RegExp(arg) };
      } catch (e) {
        throw queryInvalid(`invalid regular expression: ${(e as Error).message}`, { operator: op });
      }
    }
    case '$size':
      if (typeof arg !== 'number' || !Number.isInteger(arg) || arg < 0) {
        throw queryInvalid('$size takes a non-negative integer', { operator: op });
      }
      return { op, value: arg };
    case '$type':
      if (typeof arg !== 'string' || !typeNames.has(arg)) {
        throw queryInvalid(`$type takes one of ${[...typeNames].join(', ')}`, { operator: op });
      }
      return { op, value: arg as JsonTypeName };
    case '$mod': {
      const ok =
        Array.isArray(arg) && arg.length === 2 && arg.every((x) => typeof x === 'number' && Number.isInteger(x));
      if (!ok || arg[0] === 0) throw queryInvalid('$mod takes [divisor, remainder], integers, divisor ≠ 0');
      return { op, divisor: arg[0] as number, remainder: arg[1] as number };
    }
    case '$elemMatch':
    case '$allMatch':
      if (!isPlainObject(arg)) throw queryInvalid(`${op} takes a selector`, { operator: op });
      return { op, selector: parseObject(arg, [], true) };
    default:
      throw queryInvalid(`unknown operator ${op}`, { operator: op });
  }
}

const NOT_FOUND = Symbol('not found');

export function getField(doc: Json, path: readonly string[]): Json | typeof NOT_FOUND {
  let cur: Json = doc;
  for (const seg of path) {
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9][0-9]*)$/.test(seg)) return NOT_FOUND;
      const next: Json | undefined = cur[Number(seg)];
      if (next === undefined) return NOT_FOUND;
      cur = next;
    } else if (isPlainObject(cur) && Object.hasOwn(cur, seg)) {
      cur = cur[seg]!;
    } else {
      return NOT_FOUND;
    }
  }
  return cur;
}

/** The value at a field path, or undefined when the document lacks it. */
export function fieldValue(doc: Json, path: readonly string[]): Json | undefined {
  const v = getField(doc, path);
  return v === NOT_FOUND ? undefined : v;
}

export function matches(selector: Selector, doc: Json): boolean {
  switch (selector.kind) {
    case 'and':
      return selector.nodes.every((n) => matches(n, doc));
    case 'or':
      return selector.nodes.some((n) => matches(n, doc));
    case 'nor':
      return !selector.nodes.some((n) => matches(n, doc));
    case 'not':
      return !matches(selector.node, doc);
    case 'field': {
      const v = getField(doc, selector.path);
      if (v === NOT_FOUND) return selector.cond.op === '$exists' && !selector.cond.value;
      return matchCondition(selector.cond, v);
    }
  }
}

const eq = (a: Json, b: Json) => compareJson(a, b) === 0;

function matchCondition(c: Condition, v: Json): boolean {
  switch (c.op) {
    case '$eq':
      return eq(v, c.value);
    case '$ne':
      return !eq(v, c.value);
    case '$gt':
      return compareJson(v, c.value) > 0;
    case '$gte':
      return compareJson(v, c.value) >= 0;
    case '$lt':
      return compareJson(v, c.value) < 0;
    case '$lte':
      return compareJson(v, c.value) <= 0;
    case '$in':
      return Array.isArray(v) ? c.values.some((a) => v.some((x) => eq(x, a))) : c.values.some((a) => eq(v, a));
    case '$nin':
      return Array.isArray(v) ? !c.values.some((a) => v.some((x) => eq(x, a))) : !c.values.some((a) => eq(v, a));
    case '$all':
      return Array.isArray(v) && c.values.every((a) => v.some((x) => eq(x, a)));
    case '$exists':
      return c.value;
    case '$regex':
      return typeof v === 'string' && c.regex.test(v);
    case '$size':
      return Array.isArray(v) && v.length === c.value;
    case '$type':
      return jsonTypeName(v) === c.value;
    case '$mod':
      return typeof v === 'number' && Number.isInteger(v) && v % c.divisor === c.remainder;
    case '$elemMatch':
      return Array.isArray(v) && v.some((x) => matches(c.selector, x));
    case '$allMatch':
      return Array.isArray(v) && v.length > 0 && v.every((x) => matches(c.selector, x));
  }
}

export function jsonTypeName(v: Json): JsonTypeName {
  const r = typeRank(v);
  return r === 0 ? 'null' : r <= 2 ? 'boolean' : r === 3 ? 'number' : r === 4 ? 'string' : r === 5 ? 'array' : 'object';
}
