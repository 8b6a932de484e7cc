// Public surface of @loom/ca: the server's entry, its config, the client, and the wire contract.
export {
  type CaIdentity,
  CaClient,
  type CaClientOptions,
  type CaInfo,
  createCsr,
  type Enrollment,
} from './client/ca-client.js';
export type {
  CsrOptions,
  EnrollOptions,
  RegisterOptions,
  RevokeOptions,
  RawRequest,
  RawResponse,
} from './client/ca-client.js';
export { type MspFolderContents, writeMspFolder } from './client/msp-folder.js';
export { type CaServerConfig, loadCaConfig, parseCaConfig } from './config.js';
export { CaErrorCode } from './errors.js';
export * as caProtocol from './protocol.js';
export type { Attribute, AttributeRequest, IdentityInfo, IdentityType } from './protocol.js';
export { type CaServer, type StartCaServerOptions, startCaServer } from './server/index.js';
