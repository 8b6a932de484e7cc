// The `_lifecycle` system chaincode (pure rules), collection configs, and the committed-definition registry.
export * from './collections.js';
export * from './invoke.js';
export * from './lifecycle.js';
export * from './registry.js';
