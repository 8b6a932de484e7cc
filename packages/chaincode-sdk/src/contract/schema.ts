/**
 * Type names as chaincode authors write them in decorators (`'string'`, `'number'`, `'Asset'`,
 * `'Asset[]'`) or as TypeScript's `design:type` metadata gives them (constructors), turned into the
 * JSON-schema fragments Fabric's contract metadata uses, and the checks arguments are held to.
 */

export interface Schema {
  type?: string;
  format?: string;
  items?: Schema;
  $ref?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean;
  $id?: string;
}

export const SCHEMA_REF_PREFIX = '#/components/schemas/';

const primitives = new Set(['string', 'number', 'boolean', 'integer', 'object', 'array', 'null']);

/** A declared type (string, constructor, or schema) as a schema; `undefined` when nothing is known. */
export function toSchema(type: unknown): Schema | undefined {
  if (type === undefined || type === null) return undefined;
  if (typeof type === 'function') return constructorSchema(type as { name: string });
  if (typeof type === 'object') return { ...(type as Schema) };
  if (typeof type !== 'string') return undefined;
  const t = type.trim();
  if (t === '' || t === 'any' || t === 'unknown') return {};
  if (t.endsWith('[]')) return { type: 'array', items: toSchema(t.slice(0, -2)) ?? {} };
  const generic = /^Array<(.+)>$/.exec(t);
  if (generic) return { type: 'array', items: toSchema(generic[1]) ?? {} };
  const lower = t.toLowerCase();
  if (primitives.has(lower)) return { type: lower };
  if (t === 'Buffer' || t === 'Uint8Array') return { type: 'string', format: 'byte' };
  return { $ref: `${SCHEMA_REF_PREFIX}${t}` };
}

function constructorSchema(c: { name: string }): Schema | undefined {
  switch (c.name) {
    case 'String':
      return { type: 'string' };
    case 'Number':
      return { type: 'number' };
    case 'Boolean':
      return { type: 'boolean' };
    case 'Array':
      return { type: 'array' };
    case 'Buffer':
    case 'Uint8Array':
      return { type: 'string', format: 'byte' };
    // `Object`, `Promise`, `Function`: TypeScript emits these when it knows nothing more useful.
    case 'Object':
    case 'Promise':
    case 'Function':
    case 'Context':
      return undefined;
    default:
      return c.name ? { $ref: `${SCHEMA_REF_PREFIX}${c.name}` } : undefined;
  }
}

/** Returns a list of problems with `value` against `schema` (empty when it conforms). */
export function validateValue(
  value: unknown,
  schema: Schema,
  resolve: (ref: string) => Schema | undefined,
  path: string,
): string[] {
  if (schema.$ref !== undefined) {
    const target = resolve(schema.$ref);
    return target === undefined ? [] : validateValue(value, target, resolve, path);
  }
  switch (schema.type) {
    case undefined:
      return [];
    case 'string':
      return typeof value === 'string' ? [] : [`${path} should be string`];
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? [] : [`${path} should be number`];
    case 'integer':
      return Number.isInteger(value) ? [] : [`${path} should be integer`];
    case 'boolean':
      return typeof value === 'boolean' ? [] : [`${path} should be boolean`];
    case 'null':
      return value === null ? [] : [`${path} should be null`];
    case 'array': {
      if (!Array.isArray(value)) return [`${path} should be array`];
      const items = schema.items;
      return items === undefined ? [] : value.flatMap((v, i) => validateValue(v, items, resolve, `${path}[${i}]`));
    }
    case 'object': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return [`${path} should be object`];
      const o = value as Record<string, unknown>;
      const errs: string[] = [];
      for (const r of schema.required ?? []) if (!(r in o)) errs.push(`${path} should have required property '${r}'`);
      for (const [k, v] of Object.entries(o)) {
        const ps = schema.properties?.[k];
        if (ps !== undefined) errs.push(...validateValue(v, ps, resolve, `${path}.${k}`));
        else if (schema.additionalProperties === false) errs.push(`${path} should NOT have additional property '${k}'`);
      }
      return errs;
    }
    default:
      return [];
  }
}
