/**
 * `_lifecycle` as a system chaincode: Fabric's function names, one JSON argument, a JSON payload.
 * The endorser calls `invokeLifecycle` with the proposal's args and the verified creator, inside its
 * simulator (so the state reads and writes form the rwset). Pure.
 *
 *   ApproveChaincodeDefinitionForMyOrg  {name, version, sequence, packageId?, endorsementPolicy?, collections?, initRequired?}
 *   CheckCommitReadiness                {name, version, sequence, endorsementPolicy?, collections?, initRequired?}
 *   CommitChaincodeDefinition           same as CheckCommitReadiness
 *   QueryChaincodeDefinition            {name}
 *   QueryChaincodeDefinitions           {}
 *   QueryApprovedChaincodeDefinition    {name, sequence?}
 */
import {
  type Bytes,
  decodeChaincodeInvocationSpec,
  decodeChaincodeProposalPayload,
  decodeChannelHeader,
  decodeHeader,
  decodeProposal,
  decodeSerializedIdentity,
  decodeSignatureHeader,
  decodeSignedProposal,
  fromUtf8,
  LoomError,
  utf8,
} from '@loom/common';
import {
  type ApproveInput,
  approveForMyOrg,
  canonicalJson,
  checkCommitReadiness,
  commit,
  type LifecycleContext,
  LifecycleErrorCode,
  queryAllCommitted,
  queryApproved,
  queryCommitted,
} from './lifecycle.js';

export interface LifecycleCaller {
  /** The proposal creator's MSP id. */
  readonly mspId: string;
  readonly isAdmin: boolean;
}

export interface LifecycleInvokeOptions {
  /** The endorsing peer's MSP id: it approves only for its own org; it endorses a commit only if its org approved. */
  readonly myMspId: string;
}

/** Whether the function changes state (and so must be submitted, not only evaluated). */
export const LIFECYCLE_WRITE_FUNCTIONS: ReadonlySet<string> = new Set([
  'ApproveChaincodeDefinitionForMyOrg',
  'CommitChaincodeDefinition',
]);

/** The function that writes the submitting org's approval: endorsed by a peer of that org alone. */
export const APPROVE_FUNCTION = 'ApproveChaincodeDefinitionForMyOrg';

/**
 * For the gateway's endorsement plan: when a signed proposal invokes `_lifecycle`'s
 * `ApproveChaincodeDefinitionForMyOrg`, the approving org (the creator's MSP id), whose peer alone
 * must endorse it; undefined for any other proposal, or one that does not decode (the endorser then
 * reports what is wrong with it).
 */
export function approvingOrgOf(signedProposal: Bytes): string | undefined {
  try {
    const proposal = decodeProposal(decodeSignedProposal(signedProposal).proposalBytes);
    const header = decodeHeader(proposal.header);
    if (fromUtf8(decodeChannelHeader(header.channelHeader).extension) !== '_lifecycle') return undefined;
    const spec = decodeChaincodeInvocationSpec(decodeChaincodeProposalPayload(proposal.payload).input);
    if (spec.chaincodeName !== '_lifecycle' || !spec.args[0] || fromUtf8(spec.args[0]) !== APPROVE_FUNCTION) {
      return undefined;
    }
    return decodeSerializedIdentity(decodeSignatureHeader(header.signatureHeader).creator).mspId;
  } catch {
    return undefined;
  }
}

function parseArg(arg: Uint8Array | undefined): Record<string, unknown> {
  if (arg === undefined || arg.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(fromUtf8(arg));
  } catch {
    throw new LoomError(LifecycleErrorCode.INVALID_ARGUMENT, '_lifecycle argument must be JSON');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new LoomError(LifecycleErrorCode.INVALID_ARGUMENT, '_lifecycle argument must be a JSON object');
  }
  return v as Record<string, unknown>;
}

const requireAdmin = (caller: LifecycleCaller, fn: string) => {
  if (!caller.isAdmin) {
    throw new LoomError(LifecycleErrorCode.UNAUTHORIZED, `${fn} must be submitted by an organization admin`, {
      details: { mspId: caller.mspId },
      httpStatus: 403,
    });
  }
};

/**
 * Runs one `_lifecycle` function; `args[0]` is the function name, `args[1]` its JSON argument.
 * Returns the response payload (canonical JSON). Throws LoomError with a LIFECYCLE_* code.
 */
export async function invokeLifecycle(
  ctx: LifecycleContext,
  args: readonly Uint8Array[],
  caller: LifecycleCaller,
  options: LifecycleInvokeOptions,
): Promise<Uint8Array> {
  const fn = args[0] ? fromUtf8(args[0]) : '';
  const arg = parseArg(args[1]);
  const out = (v: unknown) => utf8(canonicalJson(v ?? null));
  switch (fn) {
    case 'ApproveChaincodeDefinitionForMyOrg':
      requireAdmin(caller, fn);
      // As in Fabric, a peer approves for its own org only; validation enforces it too.
      if (caller.mspId !== options.myMspId) {
        throw new LoomError(
          LifecycleErrorCode.UNAUTHORIZED,
          `an approval for ${caller.mspId} must be endorsed by a peer of ${caller.mspId}, not of ${options.myMspId}`,
          { details: { mspId: caller.mspId, peerMspId: options.myMspId }, httpStatus: 403 },
        );
      }
      return out(await approveForMyOrg(ctx, arg as unknown as ApproveInput, caller.mspId));
    case 'CheckCommitReadiness':
      return out(await checkCommitReadiness(ctx, arg as unknown as ApproveInput));
    case 'CommitChaincodeDefinition':
      requireAdmin(caller, fn);
      return out(await commit(ctx, arg as unknown as ApproveInput, { myMspId: options.myMspId }));
    case 'QueryChaincodeDefinition': {
      const name = String(arg.name ?? '');
      const def = await queryCommitted(ctx.state, name);
      if (!def) {
        throw new LoomError(LifecycleErrorCode.NOT_FOUND, `namespace ${name} is not defined`, {
          details: { name },
          httpStatus: 404,
        });
      }
      return out(def);
    }
    case 'QueryChaincodeDefinitions':
      return out(await queryAllCommitted(ctx.state));
    case 'QueryApprovedChaincodeDefinition': {
      const name = String(arg.name ?? '');
      const seq = typeof arg.sequence === 'number' ? arg.sequence : undefined;
      const a = await queryApproved(ctx.state, name, caller.mspId, seq);
      if (!a) {
        throw new LoomError(LifecycleErrorCode.NOT_FOUND, `${caller.mspId} has no approval for ${name}`, {
          details: { name, sequence: seq },
          httpStatus: 404,
        });
      }
      return out(a);
    }
    default:
      throw new LoomError(LifecycleErrorCode.INVALID_ARGUMENT, `unknown _lifecycle function ${JSON.stringify(fn)}`, {
        details: { function: fn },
      });
  }
}
