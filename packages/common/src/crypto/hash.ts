/** SHA-256 through OpenSSL (node:crypto): the hot path for tx ids, block hashes and identity ids. */
import { hash as nodeHash } from 'node:crypto';

export function sha256(data: Uint8Array): Uint8Array {
  const b = nodeHash('sha256', data, 'buffer');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Lowercase hex SHA-256: the form identity ids and cache keys use. */
export function sha256Hex(data: Uint8Array | string): string {
  return nodeHash('sha256', data, 'hex');
}

export function bytesToHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Strict: even length, hex digits only. */
export function hexToBytes(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new TypeError('invalid hex string');
  const b = Buffer.from(hex, 'hex');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
