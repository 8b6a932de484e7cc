// Public surface of the peer ledger's storage layer and rich queries.
export * from './block-store.js';
export * from './composite-key.js';
export * from './history.js';
export {
  batchIdentity,
  type BatchOp,
  type IterateOptions,
  type KV,
  type KVBackend,
  kvFromBackend,
  type WriteBatch,
} from './kv.js';
export { compareBytes, prefixUpperBound } from './keys.js';
export * from './ledger-stores.js';
export * from './level-kv.js';
export * from './memory-kv.js';
export * from './query/collation.js';
export * from './query/executor.js';
export * from './query/index-def.js';
export * from './query/query.js';
export * from './query/selector.js';
export * from './range-query.js';
export { documentWithId } from './rich-index-store.js';
export * from './state-db.js';
export * from './state-reader.js';
