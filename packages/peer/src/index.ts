// Public surface of @loom/peer.
export * from './ledger/index.js';
export {
  AccumulatorErrorCode,
  type AccumulatedTx,
  type AccumulatorStore,
  createMemoryAccumulatorStore,
  LedgerAccumulator,
  mmrPosition,
} from './ledger/accumulator.js';
export * from './ledger/proofs.js';
export * from './validation/index.js';
export * from './committer/index.js';
export * from './delivery/index.js';
export * from './node/index.js';
export * from './gateway/index.js';
export * from './simulation/index.js';
