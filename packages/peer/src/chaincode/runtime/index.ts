// Public surface of the peer's chaincode runtime (out-of-process chaincode over the stream protocol).
export { ChaincodeStreamConnection } from './connection.js';
export { ChaincodeRuntime, type ChaincodeRuntimeOptions, createChaincodeRuntime } from './runtime.js';
export {
  type ChaincodeLaunchSpec,
  type ChaincodePackageResolver,
  ChaincodeRuntimeErrorCode,
  type ChaincodeServerConnection,
  type ExecuteRequest,
  type ExecuteResult,
  type InvokeChaincodeHandler,
} from './types.js';
