export * from '@loom/common/ledger-proofs';
