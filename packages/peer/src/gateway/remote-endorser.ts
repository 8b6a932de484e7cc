/**
 * Endorsement by another peer: `POST /v1/peer/process-proposal` on the target, called through the
 * same route declaration the target serves. The caller supplies the transport (common's
 * `createHttpsClient` with the channel's TLS roots and this peer's client certificate).
 */
import type { Bytes } from '@loom/common';
import { type GatewayTransport, gatewayRoutes, invokeRoute } from '@loom/common/gateway/index';
import type { EndorserTarget } from './endorsement-plan.js';
import type { EndorserOutcome } from './gateway-plugin.js';

export interface RemoteEndorserOptions {
  readonly transport: GatewayTransport;
  /** Per-call deadline. Default 30 s. */
  readonly timeoutMs?: number;
}

/**
 * Sends `signedProposal` to `target`; failures come back as an outcome, never thrown. `minHeight`
 * (the caller's committed height on the channel) makes the target catch up before it simulates.
 */
export function createRemoteEndorser(
  options: RemoteEndorserOptions,
): (signedProposal: Bytes, target: EndorserTarget, minHeight?: number) => Promise<EndorserOutcome> {
  return async (signedProposal, target, minHeight) => {
    try {
      const proposalResponse = await invokeRoute(
        options.transport,
        target.endpoint,
        gatewayRoutes.processProposal,
        { signedProposal, ...(minHeight !== undefined ? { minHeight } : {}) },
        { timeoutMs: options.timeoutMs ?? 30_000 },
      );
      return { ...target, ok: true, proposalResponse };
    } catch (e) {
      const code = typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'UNAVAILABLE';
      return { ...target, ok: false, code, message: e instanceof Error ? e.message : String(e) };
    }
  };
}
