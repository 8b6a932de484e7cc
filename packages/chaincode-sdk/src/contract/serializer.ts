import type { Schema } from './schema.js';

/**
 * fabric-contract-api's default serializer: transaction results go out as JSON (strings and numbers
 * declared as such go out as their text), and arguments come in as text converted by declared type.
 */
export class JSONSerializer {
  toBuffer(result: unknown, schema: Schema = {}): Buffer {
    if (result === undefined || result === null) return Buffer.alloc(0);
    if (result instanceof Uint8Array) return Buffer.from(result.buffer, result.byteOffset, result.byteLength);
    if (schema.type === 'string' || schema.type === 'number' || schema.type === 'integer') {
      return Buffer.from(String(result), 'utf8');
    }
    return Buffer.from(JSON.stringify(result), 'utf8');
  }

  /**
   * The argument as a value of the declared type; throws when the text is not one. Without a type
   * the text is passed through as a string.
   */
  fromBuffer(data: Uint8Array, schema: Schema = {}): unknown {
    const text = Buffer.from(data).toString('utf8');
    switch (schema.type) {
      case undefined:
        if (schema.$ref === undefined) return text;
        return parseJson(text);
      case 'string':
        return text;
      case 'number':
      case 'integer': {
        const n = text.trim() === '' ? Number.NaN : Number(text);
        if (Number.isNaN(n)) throw new Error(`"${text}" is not a number`);
        return n;
      }
      case 'boolean':
        if (text === 'true') return true;
        if (text === 'false') return false;
        throw new Error(`"${text}" is not a boolean`);
      default:
        return parseJson(text);
    }
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`not valid JSON: ${(e as Error).message}`);
  }
}
