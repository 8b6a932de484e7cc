// Public surface of @loom/common. Browser-safe parts are also re-exported by ./portable.ts.
export * from './encoding.js';
export * from './errors.js';
export * from './identity-types.js';
export * from './protocol/index.js';
export * from './config/index.js';
export * from './logging.js';
export * from './ops/index.js';
export * from './policy/index.js';
export * from './tls/index.js';
export * from './channel/index.js';
export * from './governance/index.js';
export { bytesToHex, hexToBytes, sha256, sha256Hex } from './crypto/hash.js';
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
export {
  generateKeyPair,
  KeyErrorCode,
  type KeyPair,
  type PublicKeyInput,
  privateKeyFromPem,
  privateKeyToPem,
  publicKeyFromDer,
  publicKeyFromPem,
  publicKeyOf,
  publicKeyToDer,
  publicKeyToPem,
  sign,
  signerFromKey,
  signerFromPem,
  toPublicKey,
  verify,
  verifyOrThrow,
} from './crypto/signing.js';
export * as portableCrypto from './crypto/portable.js';
export { createMsp, type Msp } from './msp/msp.js';
export { MspManager, type MspManagerOptions } from './msp/msp-manager.js';
export {
  type LoadedMsp,
  type LocalSigningIdentity,
  loadMspFromDir,
  type MspSource,
  writeMspDir,
} from './msp/msp-dir.js';
export {
  type CertificateSubject,
  type Clock,
  type MspConfig,
  MspErrorCode,
  type NodeOUsConfig,
  type Pem,
  type ValidatedIdentity,
} from './msp/types.js';
export { FABRIC_ATTRS_OID } from './msp/certificate.js';
