/**
 * Signers in the shape of fabric-gateway's: a function from a digest (the SHA-256 of the bytes to
 * sign) to a DER signature. Pure JavaScript (@noble/curves), so the same code signs in a browser.
 */
import { p256 } from '@noble/curves/nist.js';
import { compactToDer, secretKeyFromPem } from '@loom/common/portable';

/** Signs a digest; answers a DER-encoded ECDSA signature. */
export type Signer = (digest: Uint8Array) => Promise<Uint8Array>;

/**
 * A signer for a P-256 private key in PKCS#8 ("PRIVATE KEY") or SEC1 ("EC PRIVATE KEY") PEM.
 * Signatures are low-S, as Loom's verifiers require.
 */
export function newPrivateKeySigner(privateKeyPem: string | Uint8Array): Signer {
  const pem = typeof privateKeyPem === 'string' ? privateKeyPem : new TextDecoder().decode(privateKeyPem);
  const secretKey = secretKeyFromPem(pem);
  return async (digest) => {
    // The digest is already SHA-256 of the message: sign it as is.
    const compact = p256.sign(digest, secretKey, { prehash: false, lowS: true, format: 'compact' });
    return compactToDer(compact);
  };
}
