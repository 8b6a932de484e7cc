// Public surface of the endorser.
export {
  type ChaincodeDefinition,
  type ChaincodeRegistry,
  createEndorser,
  type EndorsementSigner,
  type Endorser,
  type EndorserChannel,
  EndorserErrorCode,
  type EndorserOptions,
  INITIALIZED_KEY,
  type ProposalResult,
  type VerifiableIdentity,
} from './endorser.js';
