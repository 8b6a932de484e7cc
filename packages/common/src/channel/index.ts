export * from './channel-config-views.js';
export { decodeConfigEnvelopeFromBlock } from './block-helpers.js';
export { buildGenesisBlock, channelConfigFromNetwork, type ConsenterMaterial, type OrgMaterial } from './genesis.js';
export {
  absolutePolicyName,
  type ConfigElementChange,
  ConfigUpdateErrorCode,
  checkConfigConsistency,
  computeConfigChanges,
  computeConfigUpdate,
  type IgnoredSignature,
  type ValidatedConfigUpdate,
  validateConfigUpdate,
  validateConfigUpdateEnvelope,
  type VerifiedConfigSignatures,
  verifyConfigSignatures,
} from './config-update.js';
