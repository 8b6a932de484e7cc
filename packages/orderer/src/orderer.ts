/**
 * An ordering node: its identity (MSP folder), one KvStore (`level`) under its data dir, the
 * libp2p cluster transport on the raft port, the channels it joined, and three HTTP listeners —
 * public (broadcast/deliver), admin (channel participation) and operations (/healthz, /metrics,
 * /logspec).
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { Server as TlsServer } from 'node:tls';
import { encodeSerializedIdentity, LoomError, utf8 } from '@loom/common';
import { signerFromKey } from '@loom/common/crypto/signing';
import { childLogger, createLogger, type Logger } from '@loom/common/logging';
import { loadMspFromDir } from '@loom/common/msp/msp-dir';
import { createOperationsServer, type OperationsServer } from '@loom/common/ops/operations-server';
import {
  createReloadableTls,
  type ListenerTlsConfig,
  parseListenerTlsConfig,
  type ReloadableTls,
  registerCertificateExpiryMetrics,
  reloadTlsOnSignal,
} from '@loom/common/tls/index';
import type { FastifyInstance } from 'fastify';
import { Gauge, Counter, Registry } from 'prom-client';
import { parse as parseYaml } from 'yaml';
import { Registrar } from './registrar.js';
import { createAdminServer, createPublicServer } from './server/http-server.js';
import { LevelKv } from './storage/kv.js';
import { createLibp2pTransport, loadOrCreateLibp2pKey } from './transport/libp2p.js';

export interface OrdererConfig {
  /** A name for logs; the consenter id on each channel comes from that channel's config. */
  readonly id: string;
  readonly mspId: string;
  /** Fabric-layout MSP folder: signcerts/, keystore/, cacerts/. */
  readonly mspDir: string;
  readonly dataDir: string;
  /** Host of every listener (loopback by default). */
  readonly host: string;
  /** Broadcast / deliver. 0 picks a free port. */
  readonly port: number;
  readonly adminPort: number;
  readonly raftPort: number;
  /** Omit to run without an operations listener. */
  readonly operationsPort?: number;
  readonly logSpec?: string;
  /**
   * HTTPS for the public and admin listeners (PEM file paths), mutual TLS with `clientAuthRequired`
   * (clients must present a certificate from `caFiles` or a joined channel's TLS roots). Renewed
   * files are reloaded without a restart (file watch and SIGHUP).
   */
  readonly tls?: ListenerTlsConfig;
  /** HTTPS for the operations listener (Fabric's `Operations.TLS`); plain HTTP when absent. */
  readonly operationsTls?: ListenerTlsConfig;
  readonly raft?: {
    readonly tickMs?: number;
    readonly electionTick?: number;
    readonly heartbeatTick?: number;
    readonly snapshotIntervalEntries?: number;
  };
  /** How long a broadcast waits for its block before answering 503. */
  readonly submitTimeoutMs?: number;
  /** Admission control: envelopes of this node's clients waiting at once per channel (default 2,000). */
  readonly maxPendingEnvelopes?: number;
  /** Flush each write (Raft state, log, blocks) to the disk before going on (default true). */
  readonly syncWrites?: boolean;
}

export const ConfigErrorCode = 'ORDERER_CONFIG_INVALID';

function configError(file: string, message: string): LoomError {
  return new LoomError(ConfigErrorCode, `${file}: ${message}`, { httpStatus: 400, details: { file } });
}

/** Reads an orderer.yaml; relative paths are resolved against the file's folder. */
export async function loadOrdererConfig(file: string): Promise<OrdererConfig> {
  const text = await readFile(file, 'utf8');
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw configError(file, `not YAML: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null) throw configError(file, 'expected a mapping');
  const r = raw as Record<string, unknown>;
  const base = dirname(resolve(file));
  const str = (k: string, def?: string): string => {
    const v = r[k] ?? def;
    if (typeof v !== 'string' || v === '') throw configError(file, `${k} must be a non-empty string`);
    return v;
  };
  const port = (k: string, optional = false): number | undefined => {
    const v = r[k];
    if (v === undefined && optional) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535)
      throw configError(file, `${k} must be a port number`);
    return v;
  };
  const positiveInt = (k: string): number => {
    const v = r[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
      throw configError(file, `${k} must be a positive integer`);
    return v;
  };
  const bool = (k: string): boolean => {
    const v = r[k];
    if (typeof v !== 'boolean') throw configError(file, `${k} must be true or false`);
    return v;
  };
  const path = (p: string) => (isAbsolute(p) ? p : join(base, p));
  let tls: ListenerTlsConfig | undefined;
  let operationsTls: ListenerTlsConfig | undefined;
  try {
    tls = parseListenerTlsConfig(r.tls, `${file}: tls`, path);
    operationsTls = parseListenerTlsConfig(r.operationsTls, `${file}: operationsTls`, path);
  } catch (e) {
    throw configError(file, (e as Error).message.slice(file.length + 2));
  }
  const raft = (r.raft ?? {}) as OrdererConfig['raft'];
  return {
    id: str('id'),
    mspId: str('mspId'),
    mspDir: path(str('mspDir')),
    dataDir: path(str('dataDir')),
    host: str('host', '127.0.0.1'),
    port: port('port')!,
    adminPort: port('adminPort')!,
    raftPort: port('raftPort')!,
    ...(port('operationsPort', true) === undefined ? {} : { operationsPort: port('operationsPort')! }),
    ...(typeof r.logSpec === 'string' ? { logSpec: r.logSpec } : {}),
    ...(tls ? { tls } : {}),
    ...(operationsTls ? { operationsTls } : {}),
    ...(raft ? { raft } : {}),
    ...(typeof r.submitTimeoutMs === 'number' ? { submitTimeoutMs: r.submitTimeoutMs } : {}),
    ...(r.maxPendingEnvelopes === undefined ? {} : { maxPendingEnvelopes: positiveInt('maxPendingEnvelopes') }),
    ...(r.syncWrites === undefined ? {} : { syncWrites: bool('syncWrites') }),
  };
}

export interface OrdererHandle {
  readonly registrar: Registrar;
  /** Base URLs of the listeners. */
  readonly urls: { readonly public: string; readonly admin: string; readonly operations: string | undefined };
  readonly peerId: string;
  readonly logger: Logger;
  stop(): Promise<void>;
}

function ordererMetrics(registry: Registry, registrar: () => Registrar | undefined) {
  const perChannel = (
    name: string,
    help: string,
    pick: (s: ReturnType<Registrar['list']>[number] & { commit: number; applied: number; isLeader: number }) => number,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ['channel'],
      registers: [registry],
      collect() {
        this.reset();
        for (const chain of registrar()?.channels ?? []) {
          const s = chain.status();
          const info = registrar()!.info(chain.channel);
          this.set(
            { channel: chain.channel },
            pick({ ...info, commit: s.commit, applied: s.applied, isLeader: s.role === 'leader' ? 1 : 0 }),
          );
        }
      },
    });
  perChannel('loom_orderer_raft_term', 'Current Raft term', (s) => s.term);
  perChannel('loom_orderer_raft_is_leader', '1 when this node leads the channel', (s) => s.isLeader);
  perChannel('loom_orderer_raft_committed_index', 'Raft commit index', (s) => s.commit);
  perChannel('loom_orderer_raft_applied_index', 'Raft applied index', (s) => s.applied);
  perChannel('loom_orderer_ledger_height', 'Blocks in the channel', (s) => s.height);
  const blocks = new Counter({
    name: 'loom_orderer_blocks_total',
    help: 'Blocks written',
    labelNames: ['channel'],
    registers: [registry],
  });
  const txs = new Counter({
    name: 'loom_orderer_transactions_total',
    help: 'Envelopes written in blocks',
    labelNames: ['channel'],
    registers: [registry],
  });
  return (channel: string, _n: number, txCount: number) => {
    blocks.inc({ channel });
    txs.inc({ channel }, txCount);
  };
}

export async function startOrderer(config: OrdererConfig, options: { logger?: Logger } = {}): Promise<OrdererHandle> {
  const logger =
    options.logger ??
    createLogger({ component: 'orderer', level: config.logSpec ?? 'info', bindings: { node: config.id } });
  const msp = await loadMspFromDir(config.mspDir, config.mspId);
  const me = msp.signingIdentity;
  if (!me)
    throw new LoomError(ConfigErrorCode, `${config.mspDir} has no signing identity (signcerts/ + keystore/)`, {
      httpStatus: 400,
    });
  const signer = signerFromKey(me.privateKey);
  const creator = encodeSerializedIdentity({ mspId: config.mspId, idBytes: utf8(me.certPem) });
  const registry = new Registry();
  // Seconds to expiry of the enrollment certificate (the TLS pairs register their own).
  registerCertificateExpiryMetrics(registry, () => [{ name: 'enrollment', certPem: me.certPem }]);
  let registrar: Registrar | undefined;
  // Whom the listeners trust besides caFiles: the TLS roots of every channel this orderer serves.
  const channelTlsRoots = () =>
    [
      ...new Set(
        (registrar?.channels ?? []).flatMap((c) =>
          [...Object.values(c.resources.config.orgs), ...Object.values(c.resources.config.orderer.orgs)].flatMap(
            (o) => [...(o.msp.tlsRootCerts ?? []), ...(o.msp.tlsIntermediateCerts ?? [])],
          ),
        ),
      ),
    ].sort();
  const tls: ReloadableTls | undefined = config.tls
    ? await createReloadableTls({
        ...config.tls,
        logger: childLogger(logger, 'tls'),
        registry,
        name: 'orderer',
        trustedRoots: channelTlsRoots,
      })
    : undefined;
  const opsTls: ReloadableTls | undefined = config.operationsTls
    ? await createReloadableTls({
        ...config.operationsTls,
        logger: childLogger(logger, 'tls'),
        registry,
        name: 'operations',
      })
    : undefined;
  const stopSignal = reloadTlsOnSignal([tls, opsTls].filter((t): t is ReloadableTls => t !== undefined));

  const kv = await LevelKv.open(join(config.dataDir, 'ledger'), { sync: config.syncWrites ?? true });
  const closers: Array<() => Promise<void>> = [
    async () => {
      stopSignal();
      tls?.close();
      opsTls?.close();
    },
    () => kv.close(),
  ];
  const close = async () => {
    for (const c of closers.reverse()) {
      try {
        await c();
      } catch (e) {
        logger.warn({ err: (e as Error).message }, 'error during shutdown');
      }
    }
  };
  try {
    const transport = await createLibp2pTransport({
      host: config.host,
      port: config.raftPort,
      privateKey: await loadOrCreateLibp2pKey(join(config.dataDir, 'libp2p.key')),
      certPem: me.certPem,
      signer,
      logger: childLogger(logger, 'cluster'),
    });
    closers.push(() => transport.stop());

    const onBlock = ordererMetrics(registry, () => registrar);
    registrar = await Registrar.open({
      kv,
      transport,
      identity: { creator, signer, certPem: me.certPem },
      logger,
      tuning: {
        ...(config.raft?.tickMs ? { tickMs: config.raft.tickMs } : {}),
        ...(config.raft?.electionTick ? { electionTick: config.raft.electionTick } : {}),
        ...(config.raft?.heartbeatTick ? { heartbeatTick: config.raft.heartbeatTick } : {}),
        ...(config.raft?.snapshotIntervalEntries
          ? { snapshotIntervalEntries: config.raft.snapshotIntervalEntries }
          : {}),
        ...(config.submitTimeoutMs ? { submitTimeoutMs: config.submitTimeoutMs } : {}),
        ...(config.maxPendingEnvelopes ? { maxPendingEnvelopes: config.maxPendingEnvelopes } : {}),
        onBlock,
      },
    });
    const reg = registrar;
    closers.push(() => reg.stop());

    const listen = async (app: FastifyInstance, port: number) => {
      await app.listen({ host: config.host, port });
      closers.push(() => app.close());
      tls?.attach(app.server as unknown as TlsServer);
      const addr = app.server.address();
      const p = typeof addr === 'object' && addr ? addr.port : port;
      return `${tls ? 'https' : 'http'}://${config.host}:${p}`;
    };
    const serverTls = tls ? { options: () => tls.serverOptions() } : undefined;
    const publicUrl = await listen(createPublicServer(reg, logger, serverTls), config.port);
    const adminUrl = await listen(createAdminServer(reg, logger, serverTls), config.adminPort);
    // Channels joined from disk bring their TLS roots now, not at the next trust check.
    if (tls && channelTlsRoots().length > 0) await tls.reload();

    let ops: OperationsServer | undefined;
    let opsUrl: string | undefined;
    if (config.operationsPort !== undefined) {
      ops = createOperationsServer({
        host: config.host,
        port: config.operationsPort,
        logger,
        registry,
        ...(opsTls ? { reloadableTls: opsTls } : {}),
        healthChecks: [
          {
            name: 'channels',
            async check() {
              const failed = reg.channels.filter((c) => c.failure);
              if (failed.length > 0) throw new Error(`halted: ${failed.map((c) => c.channel).join(', ')}`);
            },
          },
        ],
      });
      opsUrl = (await ops.start()).url;
      const o = ops;
      closers.push(() => o.stop());
    }
    logger.info(
      { public: publicUrl, admin: adminUrl, operations: opsUrl, peerId: transport.peerId },
      'orderer started',
    );
    let stopping: Promise<void> | undefined;
    return {
      registrar: reg,
      urls: { public: publicUrl, admin: adminUrl, operations: opsUrl },
      peerId: transport.peerId,
      logger,
      stop: () => {
        stopping ??= close().then(() => logger.info('orderer stopped'));
        return stopping;
      },
    };
  } catch (e) {
    await close();
    throw e;
  }
}
