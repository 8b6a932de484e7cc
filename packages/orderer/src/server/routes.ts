/**
 * The orderer's HTTP contracts, declared once (path + method) so that servers and clients agree:
 * the public API (broadcast, deliver) and the admin API (channel participation).
 */
export const ordererRoutes = {
  broadcast: { method: 'POST', path: '/v1/channels/:channel/broadcast' },
  /** Several envelopes in one request (ENVELOPES_CONTENT_TYPE framing), each answered on its own. */
  broadcastBatch: { method: 'POST', path: '/v1/channels/:channel/broadcast/batch' },
  deliver: { method: 'POST', path: '/v1/channels/:channel/deliver' },
} as const;

export const participationRoutes = {
  join: { method: 'POST', path: '/participation/v1/channels' },
  list: { method: 'GET', path: '/participation/v1/channels' },
  info: { method: 'GET', path: '/participation/v1/channels/:channel' },
  remove: { method: 'DELETE', path: '/participation/v1/channels/:channel' },
} as const;

export const routeUrl = (path: string, params: Record<string, string>) =>
  path.replace(/:([a-z]+)/g, (_, k: string) => encodeURIComponent(params[k] ?? ''));

/** Body of a 200 broadcast answer. */
export interface BroadcastResponse {
  readonly status: 200;
  readonly blockNumber: number;
  readonly txIndex: number;
}

/** One envelope's answer inside a batch broadcast: as the single-envelope route would answer it. */
export type BroadcastBatchItem =
  | BroadcastResponse
  | { readonly status: number; readonly code: string; readonly message: string; readonly details?: unknown };

/** Body of a 200 batch broadcast answer: `results[i]` answers the i-th envelope of the request. */
export interface BroadcastBatchResponse {
  readonly results: readonly BroadcastBatchItem[];
}

/** Most envelopes one batch broadcast may carry. */
export const BROADCAST_BATCH_MAX = 10_000;

/** A batch broadcast body: frames of 4-byte big-endian length, then one encoded Envelope. */
export const ENVELOPES_CONTENT_TYPE = 'application/vnd.loom.envelopes';

/** A deliver stream is a sequence of frames: 4-byte big-endian length, then one encoded Block. */
export const DELIVER_CONTENT_TYPE = 'application/vnd.loom.blocks';
