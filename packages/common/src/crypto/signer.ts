/** Anything that can produce a Loom signature (DER, low-S ECDSA P-256 over SHA-256 of the message). */
export interface Signer {
  sign(message: Uint8Array): Uint8Array | Promise<Uint8Array>;
}
