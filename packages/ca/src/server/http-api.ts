/**
 * The Fabric-CA-shaped REST API under /api/v1: fastify routes over `CertificateAuthority`.
 * Bodies are read as raw bytes (the token signs the exact bytes) and parsed here; every answer is
 * `{success, result, errors: [{code, message}], messages}`, errors with Loom's string codes and
 * never a stack trace.
 */
import { errorResponse } from '@loom/common/ops/index';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CaErrorCode, caError } from '../errors.js';
import { type CaResponse, NONCE_HEADER, Routes, TIMESTAMP_HEADER } from '../protocol.js';
import type { Caller, CertificateAuthority } from './authority.js';

export interface ApiMetrics {
  request(method: string, route: string, status: number): void;
  authFailure(code: string): void;
}

function ok<T>(result: T): CaResponse<T> {
  return { success: true, result, errors: [], messages: [] };
}

function rawBody(req: FastifyRequest): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

function jsonBody(req: FastifyRequest): unknown {
  const raw = rawBody(req);
  if (raw.length === 0) return {};
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (e) {
    throw caError(CaErrorCode.MALFORMED_JSON, `request body is not JSON: ${(e as Error).message}`);
  }
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function basicAuth(req: FastifyRequest): { id: string; secret: string } {
  const h = header(req, 'authorization') ?? '';
  const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(h.trim());
  if (!m)
    throw caError(CaErrorCode.AUTH_FAILED, 'enroll needs HTTP Basic authorization with the enrollment ID and secret');
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw caError(CaErrorCode.AUTH_FAILED, 'malformed Basic authorization');
  return { id: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

function isForce(req: FastifyRequest): boolean {
  return (req.query as Record<string, unknown>)?.force === 'true';
}

function param(req: FastifyRequest, name: string): string {
  return String((req.params as Record<string, unknown>)[name] ?? '');
}

const relative = (p: string) => p.replace(/^\//, '');

export function caApiPlugin(ca: CertificateAuthority, metrics: ApiMetrics) {
  return async (app: FastifyInstance): Promise<void> => {
    // Raw bytes for every content type: the token signature covers the body exactly as sent.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

    app.setErrorHandler((error, req, reply) => {
      const { status, body, internal } = errorResponse(error);
      if (internal) req.log.error({ err: error }, 'CA request failed');
      if (status === 401) metrics.authFailure(body.code);
      const code = body.code.startsWith('CA_') ? body.code : `CA_${body.code}`;
      const answer: CaResponse<null> = {
        success: false,
        result: null,
        errors: [{ code, message: body.message }],
        messages: [],
      };
      void reply.code(status).type('application/json; charset=utf-8').send(answer);
    });
    app.setNotFoundHandler((req, reply) => {
      const answer: CaResponse<null> = {
        success: false,
        result: null,
        errors: [{ code: CaErrorCode.NOT_FOUND, message: `no route for ${req.method} ${req.url.split('?')[0]}` }],
        messages: [],
      };
      void reply.code(404).send(answer);
    });
    app.addHook('onResponse', async (req, reply) => {
      metrics.request(req.method, req.routeOptions.url ?? 'unknown', reply.statusCode);
    });

    const authenticate = (req: FastifyRequest): Promise<Caller> =>
      ca.authenticate({
        method: req.method,
        url: req.url,
        body: rawBody(req),
        authorization: header(req, 'authorization'),
        timestamp: header(req, TIMESTAMP_HEADER),
        nonce: header(req, NONCE_HEADER),
      });

    type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
    const route = (r: { method: string; path: string }, handler: Handler) =>
      app.route({
        method: r.method as 'GET',
        url: relative(r.path) === '' ? '/' : `/${relative(r.path)}`,
        handler: async (req, reply) => ok(await handler(req, reply)),
      });

    route(Routes.cainfo, async () => ca.caInfo());
    route(Routes.enroll, async (req) => {
      const { id, secret } = basicAuth(req);
      return ca.enroll(id, secret, jsonBody(req));
    });
    route(Routes.register, async (req) => ca.register(await authenticate(req), jsonBody(req)));
    route(Routes.reenroll, async (req) => ca.reenroll(await authenticate(req), jsonBody(req)));
    route(Routes.revoke, async (req) => ca.revoke(await authenticate(req), jsonBody(req)));
    route(Routes.gencrl, async (req) => ca.gencrl(await authenticate(req)));
    route(Routes.listIdentities, async (req) => ca.listIdentities(await authenticate(req)));
    route(Routes.getIdentity, async (req) => ca.getIdentity(await authenticate(req), param(req, 'id')));
    route(Routes.addIdentity, async (req) => ca.register(await authenticate(req), jsonBody(req)));
    route(Routes.modifyIdentity, async (req) =>
      ca.modifyIdentity(await authenticate(req), param(req, 'id'), jsonBody(req)),
    );
    route(Routes.removeIdentity, async (req) =>
      ca.removeIdentity(await authenticate(req), param(req, 'id'), isForce(req)),
    );
    route(Routes.listAffiliations, async (req) => ca.listAffiliations(await authenticate(req)));
    route(Routes.addAffiliation, async (req) =>
      ca.addAffiliation(await authenticate(req), jsonBody(req), isForce(req)),
    );
    route(Routes.removeAffiliation, async (req) =>
      ca.removeAffiliation(await authenticate(req), param(req, 'name'), isForce(req)),
    );
    route(Routes.certificates, async (req) =>
      ca.certificates(await authenticate(req), (req.query ?? {}) as Record<string, unknown>),
    );
  };
}
