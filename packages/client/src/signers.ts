/**
 * Signers in the shape of fabric-gateway's: a function from a digest (the SHA-256 of the bytes to
 * sign) to a DER signature. Pure JavaScript (@noble/curves), so the same code signs in a browser.
 * In Node, `newPrivateKeySigner` also signs whole messages with node:crypto (OpenSSL, an order of
 * magnitude faster than pure JavaScript), which the SDK uses when the digest is the default SHA-256.
 */
import { p256 } from '@noble/curves/nist.js';
import { compactToDer, secretKeyFromPem } from '@loom/common/portable';
import { sha256 } from './hash.js';

/** Signs a digest; answers a DER-encoded ECDSA signature. */
export type Signer = (digest: Uint8Array) => Promise<Uint8Array>;

/**
 * Where a signer keeps its optional whole-message form: `(message) => DER signature over
 * SHA-256(message)`, identical in effect to `signer(sha256(message))`.
 */
export const SIGN_MESSAGE: unique symbol = Symbol.for('loom.client.signMessage');

type MessageSigner = (message: Uint8Array) => Promise<Uint8Array>;

/** The signer's whole-message form, if it has one. */
export function messageSignerOf(signer: Signer): MessageSigner | undefined {
  return (signer as Signer & { [SIGN_MESSAGE]?: MessageSigner })[SIGN_MESSAGE];
}

const inNode = () => typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/**
 * A signer for a P-256 private key in PKCS#8 ("PRIVATE KEY") or SEC1 ("EC PRIVATE KEY") PEM.
 * Signatures are low-S, as Loom's verifiers require.
 */
export function newPrivateKeySigner(privateKeyPem: string | Uint8Array): Signer {
  const pem = typeof privateKeyPem === 'string' ? privateKeyPem : new TextDecoder().decode(privateKeyPem);
  const secretKey = secretKeyFromPem(pem);
  const signer: Signer = async (digest) => {
    // The digest is already SHA-256 of the message: sign it as is.
    const compact = p256.sign(digest, secretKey, { prehash: false, lowS: true, format: 'compact' });
    return compactToDer(compact);
  };
  if (inNode()) {
    // Loaded on first use, like the Node transport; if it cannot load, the pure-JS path signs.
    let native: Promise<MessageSigner | undefined> | undefined;
    const signMessage: MessageSigner = async (message) => {
      native ??= import('./signers-node.js').then((m) => m.nodeMessageSigner(pem)).catch(() => undefined);
      const n = await native;
      return n ? n(message) : signer(sha256(message));
    };
    Object.defineProperty(signer, SIGN_MESSAGE, { value: signMessage });
  }
  return signer;
}
