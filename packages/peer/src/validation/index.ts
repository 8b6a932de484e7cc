// Public surface of block validation. `StateReader` is exported as `ValidationStateReader`: the
// ledger exports its own, richer `StateReader`, which satisfies this one.
export { createEndorsementPolicySource, type EndorsementPolicyTexts } from './policies.js';
export {
  createSignatureVerifier,
  type SignatureVerificationItem,
  type SignatureVerifier,
  type SignatureVerifierOptions,
  type SignatureVerifierPool,
  type SignatureVerifierStats,
} from './signature-verifier.js';
export {
  compareKeys,
  hashedNamespace,
  type StateReader as ValidationStateReader,
  VALIDATION_PARAMETER,
} from './state-reader.js';
export type {
  BlockValidationContext,
  BlockValidationResult,
  EndorsementPolicy,
  EndorsementPolicySource,
  HistoryEntry,
  IdentityDeserializer,
  StateUpdate,
  TransactionValidationInfo,
  ValidationIdentity,
} from './types.js';
export {
  type BlockPreparationContext,
  type PreparedBlock,
  prepareBlock,
  ValidationErrorCode,
  validateBlock,
} from './validate-block.js';
