/**
 * Composite keys in Fabric's format: U+0000 objectType U+0000 attr1 U+0000 attr2 U+0000 ...
 * They sort before every simple key (simple keys may not start with U+0000), so a simple-key range
 * query, which starts at U+0001 when its start key is empty, never returns one. Pure.
 */
import { LoomError } from '@loom/common';

export const COMPOSITE_KEY_NAMESPACE = '\u0000';
/** The highest code point: the end of a partial composite key range. */
export const MAX_UNICODE_RUNE = '\u{10FFFF}';
/** Fabric's substitute for an empty range start key: the first simple key. */
export const EMPTY_KEY_SUBSTITUTE = '\u0001';

const loneSurrogate = /\p{Cs}/u;

function invalidKey(message: string): LoomError {
  return new LoomError('INVALID_KEY', message, { httpStatus: 400 });
}

function validatePart(s: string, what: string): void {
  if (typeof s !== 'string' || loneSurrogate.test(s)) throw invalidKey(`${what} is not valid UTF-8`);
  if (s.includes('\u0000') || s.includes(MAX_UNICODE_RUNE)) {
    throw invalidKey(`${what} ${JSON.stringify(s)} contains U+0000 or U+10FFFF, which are not allowed`);
  }
}

export function createCompositeKey(objectType: string, attributes: readonly string[]): string {
  validatePart(objectType, 'objectType');
  let key = COMPOSITE_KEY_NAMESPACE + objectType + COMPOSITE_KEY_NAMESPACE;
  for (const a of attributes) {
    validatePart(a, 'attribute');
    key += a + COMPOSITE_KEY_NAMESPACE;
  }
  return key;
}

export function splitCompositeKey(compositeKey: string): { objectType: string; attributes: string[] } {
  if (!isCompositeKey(compositeKey)) throw invalidKey('not a composite key');
  const parts = compositeKey.slice(1).split(COMPOSITE_KEY_NAMESPACE);
  parts.pop(); // the terminating U+0000 leaves an empty last part
  const [objectType = '', ...attributes] = parts;
  return { objectType, attributes };
}

export function isCompositeKey(key: string): boolean {
  return key.startsWith(COMPOSITE_KEY_NAMESPACE);
}

/** The [start, end) range of every composite key that extends `createCompositeKey(objectType, attributes)`. */
export function partialCompositeKeyRange(
  objectType: string,
  attributes: readonly string[],
): { startKey: string; endKey: string } {
  const startKey = createCompositeKey(objectType, attributes);
  return { startKey, endKey: startKey + MAX_UNICODE_RUNE };
}

/** Fabric's check on simple-key range bounds: they must not be composite keys. */
export function validateSimpleKeys(...keys: string[]): void {
  for (const k of keys) {
    if (isCompositeKey(k)) {
      throw invalidKey(`first character of the key ${JSON.stringify(k)} is U+0000, which is not allowed`);
    }
  }
}
