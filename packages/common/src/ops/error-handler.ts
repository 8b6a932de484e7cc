import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LoomError } from '../errors.js';

/** The body every Loom HTTP API answers an error with. */
export interface ErrorBody {
  readonly code: string;
  readonly message: string;
  readonly details: Record<string, unknown>;
}

// Fastify's own client errors (bad JSON, wrong content type, body too large) by status.
const CLIENT_ERROR_CODES: Record<number, string> = {
  400: 'BAD_REQUEST',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  406: 'NOT_ACCEPTABLE',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'TOO_MANY_REQUESTS',
};

interface FastifyLikeError {
  statusCode?: unknown;
  code?: unknown;
  message?: unknown;
  validation?: ReadonlyArray<{ instancePath?: string; message?: string; keyword?: string; params?: unknown }>;
  validationContext?: string;
}

/** The status and body for any thrown value: LoomErrors as they say, client errors as 4xx, anything else as a bare 500. */
export function errorResponse(error: unknown): { status: number; body: ErrorBody; internal: boolean } {
  if (error instanceof LoomError) {
    return { status: error.httpStatus, body: error.toJSON(), internal: error.httpStatus >= 500 };
  }
  const e = (typeof error === 'object' && error !== null ? error : {}) as FastifyLikeError;
  if (Array.isArray(e.validation)) {
    return {
      status: 400,
      body: {
        code: 'BAD_REQUEST',
        message: typeof e.message === 'string' ? e.message : 'invalid request',
        details: {
          ...(e.validationContext ? { in: e.validationContext } : {}),
          validation: e.validation.map((v) => ({ path: v.instancePath ?? '', message: v.message ?? v.keyword ?? '' })),
        },
      },
      internal: false,
    };
  }
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (status !== undefined && status >= 400 && status < 500) {
    return {
      status,
      body: {
        code: CLIENT_ERROR_CODES[status] ?? 'BAD_REQUEST',
        message: typeof e.message === 'string' ? e.message : 'bad request',
        details: typeof e.code === 'string' ? { reason: e.code } : {},
      },
      internal: false,
    };
  }
  // Anything else is our bug: say so without leaking its message or stack.
  return { status: 500, body: { code: 'INTERNAL', message: 'internal error', details: {} }, internal: true };
}

/**
 * Fastify error handler shared by every Loom HTTP server: LoomError → its status and
 * `{code, message, details}`; validation, JSON and other client errors → 4xx (`BAD_REQUEST` for 400);
 * anything else → 500 `{code: 'INTERNAL'}`, logged with its stack but never sent.
 */
export function loomErrorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const { status, body, internal } = errorResponse(error);
  if (internal) request.log.error({ err: error }, 'request failed');
  else request.log.debug({ code: body.code, message: body.message }, 'request rejected');
  void reply.code(status).type('application/json; charset=utf-8').send(body);
}

/** Fastify not-found handler answering in the same shape. */
export function loomNotFoundHandler(request: FastifyRequest, reply: FastifyReply): void {
  void reply.code(404).send({
    code: 'NOT_FOUND',
    message: `no route for ${request.method} ${request.url.split('?')[0]}`,
    details: {},
  } satisfies ErrorBody);
}

/** Installs both handlers on a fastify instance. */
export function installLoomErrorHandling(app: FastifyInstance<any, any, any, any, any>): void {
  app.setErrorHandler(loomErrorHandler);
  app.setNotFoundHandler(loomNotFoundHandler);
}
