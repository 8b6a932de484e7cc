/**
 * @loom/chaincode-sdk: write chaincode for Loom with fabric-contract-api / fabric-shim's API.
 * Existing Fabric TypeScript chaincode changes only its imports.
 */
import 'reflect-metadata';

// Contract API (fabric-contract-api)
export { Contract } from './contract/contract.js';
export { Context, type ContextLogging } from './contract/context.js';
export {
  Transaction,
  Returns,
  Param,
  Info,
  Object,
  Property,
  Default,
  type ContractInfo,
} from './contract/decorators.js';
export { JSONSerializer } from './contract/serializer.js';
export {
  ChaincodeFromContract,
  type ChaincodeFromContractOptions,
  type ChaincodeMetadata,
  type ContractMetadata,
  type TransactionMetadata,
  type ParameterMetadata,
  SYSTEM_CONTRACT_NAME,
} from './contract/chaincode-from-contract.js';
export type { Schema } from './contract/schema.js';

// Shim (fabric-shim)
export {
  Shim,
  ChaincodeServer,
  type ChaincodeServerOptions,
  type ChaincodeConnection,
  type ShimStartOptions,
} from './shim/shim.js';
export {
  ChaincodeStub,
  RESPONSE_CODE,
  VALIDATION_PARAMETER,
  type SerializedIdentity,
  type Timestamp,
  type ChaincodeEvent,
  type DecodedSignedProposal,
  type SplitCompositeKey,
} from './shim/stub.js';
export {
  StateQueryIterator,
  HistoryQueryIterator,
  type KV,
  type KeyModification,
  type StateQueryResponse,
  type QueryResponseMetadata,
  type IterablePromise,
} from './shim/iterators.js';
/** fabric-shim's `Iterators` namespace (`Iterators.StateQueryIterator`, `Iterators.KV`, ...). */
export * as Iterators from './shim/iterators.js';
export { ClientIdentity, ATTRIBUTE_EXTENSION_OID } from './shim/client-identity.js';
export {
  KeyEndorsementPolicy,
  ROLE_TYPE_MEMBER,
  ROLE_TYPE_PEER,
  type KeyEndorsementRole,
} from './shim/key-endorsement-policy.js';
export { ChaincodeShimErrorCode } from './shim/handler.js';
export type { ChaincodeLogger, LogLevel } from './shim/logger.js';
export type { ChaincodeInterface, ChaincodeResponse } from './shim/types.js';

import { Shim } from './shim/shim.js';

/** fabric-shim's module-level functions: `import { start, success, error } from 'fabric-shim'`. */
export const start = Shim.start;
export const server = Shim.server;
export const success = Shim.success;
export const error = Shim.error;
export const newLogger = Shim.newLogger;
