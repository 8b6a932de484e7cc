/** Hash functions for digests the signer signs (fabric-gateway's `hash`). Portable. */
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';

/** Computes the digest a `Signer` signs. */
export type Hash = (message: Uint8Array) => Uint8Array;

/** SHA-256, the hash of every Loom signature (ECDSA P-256 with SHA-256). */
export const sha256: Hash = (message) => nobleSha256(message);
