// Public surface of @loom/client: the Loom gateway SDK, shaped like @hyperledger/fabric-gateway.
// Everything here is browser-portable; Node-only parts are separate modules:
// `@loom/client/file-checkpointer` and `@loom/client/transport-node` (loaded by connect() on demand).
export type { GatewayTransport, SignedLedgerDigest } from '@loom/common/gateway/index';
export type { KeyProof, LedgerDigest, TxProof } from '@loom/common/ledger-proofs';
export { type Checkpointer, type CheckpointState, checkpointers, InMemoryCheckpointer } from './checkpointer.js';
export type { CallTimeouts, TlsOptions } from './context.js';
export {
  CommitError,
  CommitStatusError,
  EndorseError,
  type ErrorDetail,
  EvaluateError,
  GatewayError,
  SubmitError,
} from './errors.js';
export type { BlockEvent, ChaincodeEvent, CloseableAsyncIterable, EventsOptions } from './events.js';
export {
  type ConnectOptions,
  type Contract,
  connect,
  type Gateway,
  type Network,
  type ProposalOptions,
} from './gateway.js';
export * as hash from './hash.js';
export type { Hash } from './hash.js';
export type { Identity } from './identity.js';
export { isMvccConflict, type RetryOptions, retryOnMvccConflict } from './retry.js';
export * as signers from './signers.js';
export type { Signer } from './signers.js';
export type { Commit, Proposal, Status, SubmittedTransaction, Transaction } from './transactions.js';
