export * from './channel-config-views.js';
export { decodeConfigEnvelopeFromBlock } from './block-helpers.js';
export { buildGenesisBlock, channelConfigFromNetwork, type ConsenterMaterial, type OrgMaterial } from './genesis.js';
