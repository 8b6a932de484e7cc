/**
 * Node-only: ECDSA P-256 over SHA-256 with node:crypto (OpenSSL). Loaded on demand by
 * `signers.newPrivateKeySigner` in Node; never imported by the portable modules.
 */
import { createPrivateKey, sign } from 'node:crypto';

/** Signs whole messages (SHA-256 inside OpenSSL); answers DER, possibly high-S (the SDK makes it low-S). */
export function nodeMessageSigner(privateKeyPem: string): (message: Uint8Array) => Promise<Uint8Array> {
  const key = createPrivateKey(privateKeyPem);
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || curve !== 'prime256v1')
    throw new Error(`not a P-256 key: ${curve ?? key.asymmetricKeyType}`);
  return async (message) => new Uint8Array(sign('sha256', message, key));
}
