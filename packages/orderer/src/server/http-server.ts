/**
 * The orderer's two HTTP listeners (fastify):
 * - public: `POST /v1/channels/:channel/broadcast` and `POST /v1/channels/:channel/deliver`;
 * - admin (a separate port, like osnadmin): channel participation under `/participation/v1/channels`.
 * Errors are `{code, message, details}` with the LoomError's status (common's loomErrorHandler);
 * 503 answers carry `Retry-After`.
 */
import { Readable } from 'node:stream';
import { decodeSeekInfo, HeaderType, LoomError, type SeekInfo, type SeekPosition, toLoomError } from '@loom/common';
import type { Logger } from '@loom/common/logging';
import { loomErrorHandler, loomNotFoundHandler } from '@loom/common/ops/error-handler';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import { OrdererErrorCode } from '../chain.js';
import type { Registrar } from '../registrar.js';
import { frame } from '../transport/frames.js';
import { authorizeBroadcast, checkEnvelope } from './envelope-checks.js';
import {
  BROADCAST_BATCH_MAX,
  type BroadcastBatchItem,
  type BroadcastBatchResponse,
  type BroadcastResponse,
  DELIVER_CONTENT_TYPE,
  ordererRoutes,
  participationRoutes,
} from './routes.js';

/** Large enough for any AbsoluteMaxBytes; the per-channel limit is checked in the handler. */
const BODY_LIMIT = 128 * 1024 * 1024;

function errorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  if (error instanceof LoomError && error.httpStatus === 503) {
    // Expected while a leader is being elected: tell the client when to retry, no error log.
    const after = Number(error.details.retryAfterSeconds ?? 1);
    request.log.debug({ code: error.code }, 'request deferred');
    void reply
      .code(503)
      .header('Retry-After', String(Number.isFinite(after) ? after : 1))
      .type('application/json; charset=utf-8')
      .send(error.toJSON());
    return;
  }
  loomErrorHandler(error, request, reply);
}

/**
 * HTTPS for a listener; plain HTTP when absent. `options()` gives the node:https options (a
 * reloadable TLS's `serverOptions`: certificate, key, trusted roots, client-certificate rules); the
 * caller attaches the reloadable TLS to `app.server` so renewed certificates are served live.
 */
export interface ServerTls {
  readonly options: () => import('node:https').ServerOptions;
}

function baseServer(logger: Logger, tls?: ServerTls): FastifyInstance {
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: BODY_LIMIT,
    logController: new LogController({ disableRequestLogging: true }),
    ...(tls ? { https: tls.options() } : {}),
  });
  app.removeAllContentTypeParsers();
  // Every body is taken as raw bytes: envelopes and blocks are CBOR, checked by the handlers.
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: BODY_LIMIT }, (_req, body, done) => done(null, body));
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(loomNotFoundHandler);
  return app as unknown as FastifyInstance;
}

function bodyBytes(req: FastifyRequest): Uint8Array {
  const b = req.body;
  if (!(b instanceof Uint8Array) || b.length === 0) {
    throw new LoomError(
      OrdererErrorCode.BAD_ENVELOPE,
      'the body must be the envelope bytes (application/octet-stream)',
      {
        httpStatus: 400,
      },
    );
  }
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** A batch broadcast body → its envelopes (4-byte big-endian length, then the bytes; nothing left over). */
function splitEnvelopes(body: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let off = 0;
  while (off < body.length) {
    if (body.length - off < 4) throw badBatch(`truncated length prefix at byte ${off}`);
    const len = view.getUint32(off);
    if (len === 0 || body.length - off - 4 < len) throw badBatch(`frame at byte ${off} is empty or overruns the body`);
    if (out.length === BROADCAST_BATCH_MAX) throw badBatch(`more than ${BROADCAST_BATCH_MAX} envelopes in one request`);
    out.push(body.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
  return out;
}

function badBatch(message: string): LoomError {
  return new LoomError(OrdererErrorCode.BAD_ENVELOPE, `malformed envelope batch: ${message}`, { httpStatus: 400 });
}

type ChannelParams = { Params: { channel: string } };

/** When each request's headers were read (Date.now()): admission control counts the time it queued. */
const requestArrivals = new WeakMap<object, number>();
const arrivedAt = (req: FastifyRequest): number | undefined => requestArrivals.get(req.raw);

export function createPublicServer(registrar: Registrar, logger: Logger, tls?: ServerTls): FastifyInstance {
  const app = baseServer(logger, tls);
  app.addHook('onRequest', (req, _reply, done) => {
    requestArrivals.set(req.raw, Date.now());
    done();
  });

  app.post<ChannelParams>(ordererRoutes.broadcast.path, async (req): Promise<BroadcastResponse> => {
    const chain = registrar.require(req.params.channel);
    const bytes = bodyBytes(req);
    chain.admit(1, arrivedAt(req));
    const resources = chain.resources;
    const checked = checkEnvelope(bytes, chain.channel, resources, [
      HeaderType.ENDORSER_TRANSACTION,
      HeaderType.MESSAGE,
      HeaderType.CONFIG_UPDATE,
    ]);
    authorizeBroadcast(checked, resources);
    const at = await chain.submit(bytes, checked.channelHeader.type === HeaderType.CONFIG_UPDATE);
    return { status: 200, blockNumber: at.blockNumber, txIndex: at.txIndex };
  });

  // Several envelopes per request: the same checks and the same guarantee for each (answered only
  // once its block is committed), each answered on its own; one HTTP exchange for all of them.
  app.post<ChannelParams>(ordererRoutes.broadcastBatch.path, async (req): Promise<BroadcastBatchResponse> => {
    const chain = registrar.require(req.params.channel);
    const envelopes = splitEnvelopes(bodyBytes(req));
    // Overloaded: the whole request is refused (503, Retry-After) before any envelope is checked.
    chain.admit(envelopes.length, arrivedAt(req));
    const results = await Promise.all(
      envelopes.map(async (bytes): Promise<BroadcastBatchItem> => {
        try {
          const resources = chain.resources;
          const checked = checkEnvelope(bytes, chain.channel, resources, [
            HeaderType.ENDORSER_TRANSACTION,
            HeaderType.MESSAGE,
            HeaderType.CONFIG_UPDATE,
          ]);
          authorizeBroadcast(checked, resources);
          const at = await chain.submit(bytes, checked.channelHeader.type === HeaderType.CONFIG_UPDATE);
          return { status: 200, blockNumber: at.blockNumber, txIndex: at.txIndex };
        } catch (e) {
          const err = toLoomError(e);
          return { status: err.httpStatus, ...err.toJSON() };
        }
      }),
    );
    return { results };
  });

  app.post<ChannelParams>(ordererRoutes.deliver.path, async (req, reply) => {
    const chain = registrar.require(req.params.channel);
    const resources = chain.resources;
    const checked = checkEnvelope(bodyBytes(req), chain.channel, resources, [HeaderType.DELIVER_SEEK_INFO]);
    resources.policies.require('Readers', [checked.creator]);
    let seek: SeekInfo;
    try {
      seek = decodeSeekInfo(checked.data);
    } catch (e) {
      throw new LoomError(OrdererErrorCode.BAD_ENVELOPE, `malformed SeekInfo: ${(e as Error).message}`, {
        httpStatus: 400,
        cause: e,
      });
    }
    const height = chain.blocks.height;
    const resolve = (p: SeekPosition) =>
      p.kind === 'oldest' ? 0 : p.kind === 'newest' ? Math.max(0, height - 1) : p.number;
    const start = resolve(seek.start);
    const stop = resolve(seek.stop);
    if (start > stop) {
      throw new LoomError(OrdererErrorCode.BAD_ENVELOPE, `start ${start} is after stop ${stop}`, { httpStatus: 400 });
    }
    if (seek.behavior === 'FAIL_IF_NOT_READY' && start >= height) {
      throw new LoomError(OrdererErrorCode.BLOCK_NOT_FOUND, `block ${start} does not exist yet (height ${height})`, {
        httpStatus: 404,
        details: { start, height },
      });
    }
    const abort = new AbortController();
    // The response closes when it ends or when the client goes away; either way stop waiting.
    // (The request's own 'close' fires as soon as its body is read, so it is not the signal.)
    reply.raw.on('close', () => abort.abort());
    const blocks = chain.blocks;
    async function* stream() {
      for (let n = start; n <= stop; n++) {
        if (n >= blocks.height) {
          if (seek.behavior === 'FAIL_IF_NOT_READY') return;
          if (!(await blocks.waitFor(n, abort.signal))) return;
        }
        const b = await blocks.get(n);
        if (!b || abort.signal.aborted) return;
        yield Buffer.from(frame(b));
      }
    }
    reply.header('content-type', DELIVER_CONTENT_TYPE);
    return reply.send(Readable.from(stream(), { objectMode: false }));
  });

  return app;
}

export function createAdminServer(registrar: Registrar, logger: Logger, tls?: ServerTls): FastifyInstance {
  const app = baseServer(logger, tls);
  const url = (name: string) => `${participationRoutes.list.path}/${name}`;

  app.post(participationRoutes.join.path, async (req, reply) => {
    const info = await registrar.join(bodyBytes(req));
    return reply
      .code(201)
      .header('location', url(info.name))
      .send({ ...info, url: url(info.name) });
  });
  app.get(participationRoutes.list.path, async () => ({
    channels: registrar.list().map((c) => ({ name: c.name, url: url(c.name) })),
    systemChannel: null,
  }));
  app.get<ChannelParams>(participationRoutes.info.path, async (req) => ({
    ...registrar.info(req.params.channel),
    url: url(req.params.channel),
  }));
  app.delete<ChannelParams>(participationRoutes.remove.path, async (req, reply) => {
    await registrar.remove(req.params.channel);
    return reply.code(204).send();
  });
  return app;
}
