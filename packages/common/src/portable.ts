// The browser-portable subset of @loom/common: no node: imports anywhere below this file.
export * from './encoding.js';
export * from './errors.js';
export * from './identity-types.js';
export * from './protocol/index.js';
export * from './policy/index.js';
export {
  generateKeyPair,
  type PortableKeyPair,
  type PortablePublicKeyInput,
  publicKeyFromSecret,
  publicKeyToDer,
  publicKeyToPem,
  secretKeyFromPem,
  secretKeyToPem,
  sha256,
  sign,
  signerFromPem,
  signerFromSecretKey,
  toPublicPoint,
  verify,
  verifyOrThrow,
} from './crypto/portable.js';
export {
  assertLowSDer,
  compactToDer,
  derToCompact,
  type EcdsaSignatureValues,
  encodeDerSignature,
  isHighS,
  P256_HALF_N,
  P256_N,
  parseDerSignature,
  SignatureErrorCode,
  toLowSDer,
} from './crypto/signature-der.js';
export type { MspConfig, NodeOUsConfig, Pem } from './msp/types.js';
