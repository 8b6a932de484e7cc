/**
 * `startCaServer(config)`: the CA process's shell. Opens the level store in the data directory,
 * loads or creates the root CA and the separate TLS CA, registers the bootstrap registrar, and
 * serves the API, `/healthz`, `/metrics` and `/logspec` on one TLS listener.
 */
import { join } from 'node:path';
import { createLogger, type Logger } from '@loom/common/logging';
import { createOperationsServer } from '@loom/common/ops/index';
import { createReloadableTls, type ReloadableTls, reloadTlsOnSignal } from '@loom/common/tls/index';
import { Counter, Registry } from 'prom-client';
import type { CaServerConfig } from '../config.js';
import { API_PREFIX } from '../protocol.js';
import { CertificateAuthority, type Clock } from './authority.js';
import { caApiPlugin } from './http-api.js';
import { loadOrCreateRootCa, loadOrCreateServerTls } from './pki.js';
import { CaStore, openLevelKvStore } from './store.js';

export interface StartCaServerOptions {
  readonly logger?: Logger;
  /** Token freshness and certificate validity are judged by this clock. */
  readonly clock?: Clock;
}

export interface CaServer {
  /** `https://host:port` (or `http://` with TLS disabled). */
  readonly url: string;
  readonly port: number;
  readonly caCertPem: string;
  readonly tlsCaCertPem: string;
  /** Closes the listener, then the store. */
  stop(): Promise<void>;
}

function tlsCaSubject(cn: string): string {
  return cn.startsWith('ca.') ? `tls${cn}` : `tlsca.${cn}`;
}

export async function startCaServer(config: CaServerConfig, options: StartCaServerOptions = {}): Promise<CaServer> {
  const clock = options.clock ?? (() => new Date());
  const logger =
    options.logger ??
    createLogger({ component: 'ca', level: config.logLevel ?? 'info', bindings: { ca: config.name } });
  const now = clock();
  const rootCa = await loadOrCreateRootCa(config.dataDir, 'ca', config.csr, now);
  const tlsCa = await loadOrCreateRootCa(
    config.dataDir,
    'tlsca',
    { cn: tlsCaSubject(config.csr.cn), ...(config.csr.names ? { names: config.csr.names } : {}) },
    now,
  );

  const registry = new Registry();
  const requests = new Counter({
    name: 'loom_ca_requests_total',
    help: 'CA API requests by method, route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const authFailures = new Counter({
    name: 'loom_ca_auth_failures_total',
    help: 'CA API calls refused with 401, by code',
    labelNames: ['code'],
    registers: [registry],
  });
  const enrollments = new Counter({
    name: 'loom_ca_enrollments_total',
    help: 'Certificates issued, by kind (enroll, reenroll)',
    labelNames: ['kind'],
    registers: [registry],
  });
  const registrations = new Counter({
    name: 'loom_ca_registrations_total',
    help: 'Identities registered',
    registers: [registry],
  });
  const revocations = new Counter({ name: 'loom_ca_revocations_total', help: 'Revoke calls', registers: [registry] });

  const store = new CaStore(await openLevelKvStore(join(config.dataDir, 'db')));
  let server: ReturnType<typeof createOperationsServer> | undefined;
  let tls: ReloadableTls | undefined;
  let stopTlsSignal = () => {};
  let renewTimer: NodeJS.Timeout | undefined;
  const stopTls = () => {
    clearInterval(renewTimer);
    stopTlsSignal();
    tls?.close();
  };
  try {
    const ca = new CertificateAuthority({
      name: config.name,
      store,
      rootCa,
      tlsCa,
      clock,
      defaultMaxEnrollments: config.maxEnrollments,
      metrics: {
        inc(name, labels) {
          if (name === 'enrollments') enrollments.inc(labels ?? {});
          else if (name === 'registrations') registrations.inc();
          else if (name === 'revocations') revocations.inc();
        },
      },
    });
    await ca.bootstrap(config.bootstrap, config.affiliations);

    if (config.tls.enabled) {
      const hosts = ['localhost', '127.0.0.1', config.listen.host, ...(config.tls.hosts ?? [])].filter(
        (h) => h !== '0.0.0.0' && h !== '::',
      );
      await loadOrCreateServerTls(config.dataDir, tlsCa, config.csr.cn, hosts, now);
      // The listener reloads its pair when the files change (or on SIGHUP), and the CA reissues its
      // own TLS certificate a day before it expires, so its listener never serves an expired one.
      tls = await createReloadableTls({
        certFile: join(config.dataDir, 'tls-cert.pem'),
        keyFile: join(config.dataDir, 'tls-key.pem'),
        logger,
        registry,
        name: 'ca',
      });
      stopTlsSignal = reloadTlsOnSignal([tls]);
      renewTimer = setInterval(() => {
        loadOrCreateServerTls(config.dataDir, tlsCa, config.csr.cn, hosts, clock()).catch((e: unknown) =>
          logger.error({ err: (e as Error).message }, 'cannot renew the CA listener TLS certificate'),
        );
      }, 3_600_000);
      renewTimer.unref();
    }

    server = createOperationsServer({
      host: config.listen.host,
      port: config.listen.port,
      logger,
      registry,
      ...(tls ? { reloadableTls: tls } : {}),
      healthChecks: [{ name: 'store', check: async () => void (await store.getIdentity(config.bootstrap.id)) }],
    });
    await server.app.register(
      caApiPlugin(ca, {
        request: (method, route, status) => requests.inc({ method, route, status: String(status) }),
        authFailure: (code) => authFailures.inc({ code }),
      }),
      { prefix: API_PREFIX },
    );
    const started = await server.start();
    logger.info({ url: started.url, caName: config.name }, 'CA started');
    const running = server;
    return {
      url: started.url,
      port: started.port,
      caCertPem: rootCa.certPem,
      tlsCaCertPem: tlsCa.certPem,
      async stop() {
        try {
          stopTls();
          await running.stop();
        } finally {
          await store.close();
        }
      },
    };
  } catch (e) {
    stopTls();
    await server?.stop().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw e;
  }
}
