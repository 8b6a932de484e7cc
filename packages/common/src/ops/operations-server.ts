import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import type { Server as TlsServer } from 'node:tls';
import { collectDefaultMetrics, type Registry } from 'prom-client';
import { LoomError } from '../errors.js';
import { type Logger, LogLevels, logLevelsOf } from '../logging.js';
import type { ReloadableTls } from '../tls/reloadable.js';
import { installLoomErrorHandling } from './error-handler.js';

/**
 * The operations endpoint every Loom node serves, as Fabric's peers and orderers do:
 * `GET /healthz`, `GET /metrics` (Prometheus), `GET|PUT /logspec`.
 */

export interface HealthCheck {
  /** Component name reported when the check fails, e.g. `ledger` or `raft`. */
  readonly name: string;
  /** Resolves when healthy; rejects (with the reason) when not. */
  check(): Promise<void>;
}

export interface OperationsTls {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** CA certificates for client authentication. */
  readonly ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  /** Require and verify a client certificate (needs `ca`). */
  readonly clientAuthRequired?: boolean;
}

export interface OperationsServerOptions {
  readonly host: string;
  /** 0 picks a free port; read it from `start()`'s result. */
  readonly port: number;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly healthChecks?: readonly HealthCheck[];
  /** The registry `/logspec` reads and changes; defaults to the logger's own (see `createLogger`). */
  readonly logLevels?: LogLevels;
  readonly tls?: OperationsTls;
  /**
   * TLS whose certificate is reloaded on renewal (common's `createReloadableTls`); takes precedence
   * over `tls`. The caller owns it (closes it after `stop()`).
   */
  readonly reloadableTls?: ReloadableTls;
  /** Register Node's process metrics (CPU, memory, event loop, GC) in `registry`. Default true. */
  readonly processMetrics?: boolean;
  /** A check that has not settled by then counts as failed. Default 5 s. */
  readonly healthCheckTimeoutMs?: number;
}

export interface HealthStatus {
  readonly status: 'OK' | 'Service Unavailable';
  readonly time: string;
  readonly failedChecks?: ReadonlyArray<{ readonly component: string; readonly reason: string }>;
}

export interface OperationsServer {
  /** Listens; resolves with the bound address. */
  start(): Promise<{ host: string; port: number; url: string }>;
  stop(): Promise<void>;
  addHealthCheck(check: HealthCheck): void;
  /** Runs every health check, as `GET /healthz` does. */
  health(): Promise<HealthStatus>;
  /** The underlying fastify instance, for nodes that mount extra operations routes before `start()`. */
  readonly app: FastifyInstance;
}

// The metric prom-client's default collectors register first; its presence means they are already there.
const PROCESS_METRIC = 'process_cpu_user_seconds_total';

async function runCheck(check: HealthCheck, timeoutMs: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`timed out after ${timeoutMs} ms`), timeoutMs);
  });
  try {
    return await Promise.race([
      check.check().then(
        () => undefined,
        (e: unknown) => (e instanceof Error ? e.message : String(e)) || 'failed',
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function createOperationsServer(options: OperationsServerOptions): OperationsServer {
  const { host, registry, logger } = options;
  const checks: HealthCheck[] = [...(options.healthChecks ?? [])];
  const logLevels = options.logLevels ?? logLevelsOf(logger) ?? new LogLevels('info');
  const timeoutMs = options.healthCheckTimeoutMs ?? 5000;
  if ((options.processMetrics ?? true) && !registry.getSingleMetric(PROCESS_METRIC)) {
    collectDefaultMetrics({ register: registry });
  }

  const tls = options.tls;
  const reloadable = options.reloadableTls;
  const app = Fastify({
    loggerInstance: logger,
    // Scrapes and probes arrive every few seconds; logging each would drown the node's own lines.
    logController: new LogController({ disableRequestLogging: true }),
    ...(reloadable
      ? { https: reloadable.serverOptions() }
      : tls
        ? {
            https: {
              cert: tls.cert,
              key: tls.key,
              ...(tls.ca === undefined ? {} : { ca: tls.ca as string | Buffer | Array<string | Buffer> }),
              requestCert: tls.clientAuthRequired ?? false,
              rejectUnauthorized: tls.clientAuthRequired ?? false,
            },
          }
        : {}),
  }) as unknown as FastifyInstance;
  installLoomErrorHandling(app);

  async function health(): Promise<HealthStatus> {
    const results = await Promise.all(checks.map(async (c) => ({ c, reason: await runCheck(c, timeoutMs) })));
    const failed = results
      .filter((r) => r.reason !== undefined)
      .map((r) => ({ component: r.c.name, reason: r.reason! }));
    const time = new Date().toISOString();
    return failed.length === 0 ? { status: 'OK', time } : { status: 'Service Unavailable', time, failedChecks: failed };
  }

  app.get('/healthz', async (_req, reply) => {
    const h = await health();
    if (h.status !== 'OK') logger.warn({ failedChecks: h.failedChecks }, 'health check failed');
    return reply.code(h.status === 'OK' ? 200 : 503).send(h);
  });

  app.get('/metrics', async (_req, reply) => {
    const text = await registry.metrics();
    return reply.type(registry.contentType).send(text);
  });

  app.get('/logspec', async () => ({ spec: logLevels.spec }));

  app.put(
    '/logspec',
    {
      schema: {
        body: {
          type: 'object',
          required: ['spec'],
          properties: { spec: { type: 'string' } },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const { spec } = req.body as { spec: string };
      logLevels.setSpec(spec);
      logger.info({ spec: logLevels.spec }, 'log spec changed');
      return { spec: logLevels.spec };
    },
  );

  let started: { host: string; port: number; url: string } | undefined;
  return {
    app,
    health,
    addHealthCheck(check) {
      checks.push(check);
    },
    async start() {
      if (started) return started;
      try {
        await app.listen({ host, port: options.port });
      } catch (e) {
        throw new LoomError('OPERATIONS_LISTEN_FAILED', `operations server cannot listen on ${host}:${options.port}`, {
          details: { host, port: options.port, reason: (e as Error).message },
          httpStatus: 500,
          cause: e,
        });
      }
      if (reloadable) reloadable.attach(app.server as unknown as TlsServer);
      const addr = app.server.address() as AddressInfo;
      const scheme = tls || reloadable ? 'https' : 'http';
      const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      started = { host: addr.address, port: addr.port, url: `${scheme}://${urlHost}:${addr.port}` };
      logger.info({ url: started.url }, 'operations server listening');
      return started;
    },
    async stop() {
      await app.close();
      started = undefined;
    },
  };
}
