/**
 * The gateway's `broadcast` dependency over the orderers' HTTP API: hands an envelope to one of the
 * channel's orderers, failing over to the next on a connection failure or a 503 (no Raft leader
 * yet, leader change, overloaded), with backoff between rounds. While every orderer is shedding load
 * (503 ORDERER_BUSY), it waits their Retry-After and keeps trying, up to `busyDeadlineMs`. Any other
 * error answer (a bad envelope, a refused creator) is final and thrown as the orderer said it.
 *
 * The path is the orderer's `ordererRoutes.broadcast` (packages/orderer/src/server/routes.ts); the
 * peer may import only common, so it is restated here.
 */
import { type Bytes, decodeChannelHeader, decodeEnvelope, decodeHeader, decodePayload, LoomError } from '@loom/common';
import { type GatewayTransport, gatewayErrorFromResponse, GatewayErrorCode } from '@loom/common/gateway/index';

/** The orderer's answer while it sheds load (packages/orderer: admission control). */
const ORDERER_BUSY = 'ORDERER_BUSY';

const BROADCAST_PATH = (channel: string) => `/v1/channels/${encodeURIComponent(channel)}/broadcast`;

export interface OrdererBroadcasterOptions {
  readonly transport: GatewayTransport;
  /** The channel's orderers (base URLs), in order of preference; called per broadcast so config updates apply. */
  readonly orderers: (channel: string) => readonly string[];
  /** Rounds over all orderers before giving up. Default 3. */
  readonly rounds?: number;
  /** Wait before round n + 1 (n ≥ 1), ms. Default 200·2^(n−1). */
  readonly backoffMs?: (round: number) => number;
  /** Per-request deadline. Default 10 s. */
  readonly timeoutMs?: number;
  /**
   * While every orderer answers 503 ORDERER_BUSY (admission control: it is shedding load, with
   * Retry-After), rounds go on past `rounds` until this long after the first attempt. Default 20 s.
   */
  readonly busyDeadlineMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

export interface BroadcastResult {
  readonly orderer: string;
  readonly blockNumber: number;
  readonly txIndex: number;
}

export function createOrdererBroadcaster(
  options: OrdererBroadcasterOptions,
): (envelope: Bytes) => Promise<BroadcastResult> {
  const rounds = options.rounds ?? 3;
  const backoff = options.backoffMs ?? ((n: number) => 200 * 2 ** (n - 1));
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = options.now ?? Date.now;
  const busyDeadlineMs = options.busyDeadlineMs ?? 20_000;
  let preferred = 0;

  return async (envelope) => {
    const channel = decodeChannelHeader(
      decodeHeader(decodePayload(decodeEnvelope(envelope).payload).header).channelHeader,
    ).channelId;
    const orderers = options.orderers(channel);
    if (orderers.length === 0) {
      throw new LoomError(GatewayErrorCode.ORDERER_UNAVAILABLE, `no orderers known for channel ${channel}`, {
        httpStatus: 503,
      });
    }
    const failures: { orderer: string; reason: string }[] = [];
    const started = now();
    for (let round = 1; ; round++) {
      /** Every orderer answered ORDERER_BUSY this round; the longest Retry-After asked for, ms. */
      let allBusy = true;
      let retryAfterMs = 0;
      for (let i = 0; i < orderers.length; i++) {
        // Start where the last success was: that orderer is likely still healthy.
        const orderer = orderers[(preferred + i) % orderers.length]!;
        let res: Awaited<ReturnType<GatewayTransport['request']>>;
        try {
          res = await options.transport.request({
            method: 'POST',
            url: `${orderer.replace(/\/+$/, '')}${BROADCAST_PATH(channel)}`,
            headers: { 'content-type': 'application/octet-stream', accept: 'application/json' },
            body: envelope,
            timeoutMs: options.timeoutMs ?? 10_000,
          });
        } catch (e) {
          allBusy = false;
          failures.push({ orderer, reason: e instanceof Error ? e.message : String(e) });
          continue;
        }
        if (res.status === 200) {
          preferred = (preferred + i) % orderers.length;
          const body = JSON.parse(new TextDecoder().decode(res.body)) as { blockNumber?: number; txIndex?: number };
          return { orderer, blockNumber: body.blockNumber ?? -1, txIndex: body.txIndex ?? -1 };
        }
        const err = gatewayErrorFromResponse(res.status, res.body, 'broadcast');
        if (res.status !== 503) throw err;
        if (err.code === ORDERER_BUSY) {
          const header = res.headers['retry-after'];
          const seconds = Number(Array.isArray(header) ? header[0] : header);
          retryAfterMs = Math.max(retryAfterMs, Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 1000);
        } else allBusy = false;
        failures.push({ orderer, reason: `${err.code}: ${err.message}` });
      }
      const busyLeft = busyDeadlineMs - (now() - started);
      if (allBusy && busyLeft > 0) {
        await sleep(Math.min(retryAfterMs, 5_000, busyLeft));
        continue;
      }
      if (round >= rounds) break;
      await sleep(backoff(round));
    }
    throw new LoomError(
      GatewayErrorCode.ORDERER_UNAVAILABLE,
      `no orderer of ${channel} accepted the transaction: ${failures.map((f) => `${f.orderer}: ${f.reason}`).join('; ')}`,
      { httpStatus: 503, details: { failures } },
    );
  };
}
