export {
  applyGovernanceActions,
  describeGovernanceAction,
  type GovernanceAction,
  parseGovernanceActions,
  proposedConfigUpdate,
} from './actions.js';
export {
  type ApprovalThreshold,
  checkThreshold,
  effectiveStatus,
  GovernanceErrorCode,
  meetsThreshold,
  type ProposalStatus,
  parseDurationMs,
  type ThresholdComparator,
  tallyVotes,
  type VoteTally,
  type VoteValue,
} from './threshold.js';
export { buildConfigUpdateEnvelope, type SignFn, signConfigUpdate } from './signing.js';
