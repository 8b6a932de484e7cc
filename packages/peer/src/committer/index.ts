export * from './block-checks.js';
export * from './ledger.js';
export * from './verify.js';
