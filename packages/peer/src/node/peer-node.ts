/**
 * The peer process around the ledger: opens every channel ledger under the data dir, joins
 * channels from genesis blocks, pulls blocks from the orderers (one deliver client per channel),
 * and serves the ledger API and the operations endpoint.
 *
 * Channel join (`POST /v1/channels` with the genesis block bytes) is accepted from loopback
 * clients only, until the governance work brings admin-signed join requests.
 *
 * It is a full peer: an install store under `<dataDir>/chaincode`, a chaincode runtime (dial-in
 * listener on `chaincodePort`), per channel a commit gate shared by commit and simulation and the
 * `_lifecycle` chaincode registry (reloaded after blocks writing `_lifecycle`, feeding validation's
 * chaincode and collection policies), the endorser, and the gateway (`/v1/gateway/*`,
 * `/v1/peer/process-proposal`). Admin routes `POST/GET /v1/admin/chaincodes` (install, list) are,
 * like channel join, accepted from loopback clients only for now.
 */
import { readdir, readFile } from 'node:fs/promises';
import type { Server as TlsServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  type Bytes,
  childLogger,
  createLogger,
  createOperationsServer,
  mspConfigsOf,
  decodeBlock,
  decodeBlockHeader,
  decodeConfigEnvelopeFromBlock,
  encodeBlock,
  installLoomErrorHandling,
  type Logger,
  LoomError,
  loadMspFromDir,
  type OperationsServer,
  type SerializedIdentity,
  signerFromKey,
  toBase64,
  txValidationCodeName,
  utf8,
  type Version,
} from '@loom/common';
import type { GatewayTransport } from '@loom/common/gateway/index';
import {
  createEphemeralTlsCa,
  createHttpsClient,
  type HttpsClient,
  createReloadableTls,
  type ReloadableTls,
  readCaFiles,
  registerCertificateExpiryMetrics,
  reloadTlsOnSignal,
  tlsTrustOf,
} from '@loom/common/tls/index';
import Fastify, { type FastifyInstance, type FastifyRequest, LogController } from 'fastify';
import { createChaincodeRegistry, touchesLifecycle } from '../chaincode/lifecycle/index.js';
import { createInstallStore } from '../chaincode/package/index.js';
import { GOVERNANCE_NAMESPACE, governanceEndorsementPolicyOf, submitApprovedProposals } from '../governance/index.js';
import { type ChaincodeListenerTls, createChaincodeRuntime } from '../chaincode/runtime/runtime.js';
import { registerGateway } from '../gateway/gateway-plugin.js';
import { CommitGate } from '../simulation/commit-gate.js';
import { openTransientStore, privateDataRoutes } from '../privdata/index.js';
import {
  createMixedTransport,
  createPeerServices,
  createPlainHttpTransport,
  type ServiceChannel,
} from './peer-services.js';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { type ChannelLedger, openChannelLedger } from '../committer/ledger.js';
import { createDeliverClient, type DeliverClient } from '../delivery/deliver-client.js';
import { createTlsFetch } from '../delivery/tls-fetch.js';
import { startGossip } from '../gossip/peer-gossip.js';
import { BLOCK_STREAM_CONTENT_TYPE, encodeFrame } from '../delivery/frames.js';
import { encodeLedgerDigest } from '../ledger/accumulator.js';
import { committedBlocks, committedChaincodeEvents } from './ledger-feeds.js';
import { createSignatureVerifier, type SignatureVerifierPool } from '../validation/signature-verifier.js';
import type { PeerConfig } from './config.js';
import {
  digestToJson,
  encodeChaincodeEventFrame,
  encodeFilteredBlock,
  keyProofToJson,
  peerRoutes,
  type SignedDigestJson,
  txProofToJson,
} from './routes.js';

export const PeerErrorCode = {
  CHANNEL_NOT_JOINED: 'PEER_CHANNEL_NOT_JOINED',
  CHANNEL_ALREADY_JOINED: 'PEER_CHANNEL_ALREADY_JOINED',
  FORBIDDEN: 'PEER_FORBIDDEN',
  BAD_REQUEST: 'PEER_BAD_REQUEST',
  NOT_FOUND: 'PEER_NOT_FOUND',
  NO_IDENTITY: 'PEER_NO_SIGNING_IDENTITY',
} as const;

export interface PeerNode {
  readonly id: string;
  /** Base URL of the peer API. */
  readonly url: string;
  readonly operationsUrl: string;
  channels(): string[];
  ledger(channelId: string): ChannelLedger;
  joinChannel(genesisBlock: Bytes): Promise<{ channelId: string; height: number }>;
  stop(): Promise<void>;
}

export interface StartPeerOptions {
  readonly logger?: Logger;
  /**
   * Validate transactions of namespaces that have no `_lifecycle` definition against the channel's
   * `Endorsement` policy instead of rejecting them: the ledger-only behaviour, for tests that commit
   * hand-made transactions. Default false (an undefined chaincode's transactions are invalid).
   */
  readonly undefinedChaincodesUseChannelEndorsement?: boolean;
}

interface Channel {
  readonly ledger: ChannelLedger;
  readonly gate: CommitGate;
  readonly deliver: DeliverClient | undefined;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

function badRequest(message: string): LoomError {
  return new LoomError(PeerErrorCode.BAD_REQUEST, message, { httpStatus: 400 });
}

function parseBlockNumber(s: string, what: string): number {
  if (!/^\d{1,15}$/.test(s)) throw badRequest(`${what} must be a block number`);
  return Number(s);
}

function parseVersion(s: string): Version {
  const m = /^(\d{1,15}):(\d{1,15})$/.exec(s);
  if (!m) throw badRequest('version must be <blockNum>:<txNum>');
  return { blockNum: Number(m[1]), txNum: Number(m[2]) };
}

export async function startPeer(config: PeerConfig, options: StartPeerOptions = {}): Promise<PeerNode> {
  const logger =
    options.logger ?? createLogger({ component: 'peer', level: config.logLevel, bindings: { node: config.id } });
  const log = logger;
  const msp = await loadMspFromDir(config.mspDir, config.mspId);
  if (!msp.signingIdentity) {
    throw new LoomError(PeerErrorCode.NO_IDENTITY, `MSP folder ${config.mspDir} has no signing identity`);
  }
  const identity: SerializedIdentity = { mspId: config.mspId, idBytes: utf8(msp.signingIdentity.certPem) };
  const signer = signerFromKey(msp.signingIdentity.privateKey);
  const deliverSigner = { identity, sign: (m: Bytes) => signer.sign(m) };

  const registry = new Registry();
  // Seconds to expiry of the enrollment certificate (the TLS pairs register their own).
  const enrollmentPem = msp.signingIdentity.certPem;
  registerCertificateExpiryMetrics(registry, () => [{ name: 'enrollment', certPem: enrollmentPem }]);
  const heightGauge = new Gauge({
    name: 'ledger_blockchain_height',
    help: 'Height of the channel ledger (blocks committed).',
    labelNames: ['channel'],
    registers: [registry],
  });
  const commitHistogram = new Histogram({
    name: 'ledger_block_processing_time',
    help: 'Seconds to check, validate and commit a block.',
    labelNames: ['channel'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const txCounter = new Counter({
    name: 'ledger_transaction_count',
    help: 'Transactions committed, by validation code.',
    labelNames: ['channel', 'validation_code'],
    registers: [registry],
  });

  const verifier: SignatureVerifierPool = createSignatureVerifier({
    poolSize: config.verifyWorkers ?? 2,
  });
  new Counter({
    name: 'signature_checks_total',
    help: "Signatures checked for block validation and the gateway, by how: worker, main_thread, cache_hit (verified before, or this peer's own endorsement), rejected_encoding; remembered_own counts own endorsements recorded.",
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      const s = verifier.stats();
      this.reset();
      this.inc({ outcome: 'worker' }, s.workerVerified);
      this.inc({ outcome: 'main_thread' }, s.mainThreadVerified);
      this.inc({ outcome: 'cache_hit' }, s.cacheHits);
      this.inc({ outcome: 'rejected_encoding' }, s.rejectedEncoding);
      this.inc({ outcome: 'remembered_own' }, s.rememberedOwn);
    },
  });
  const channels = new Map<string, Channel>();
  /** Every open ledger (joined or being joined), for the services and the commit hook. */
  const open = new Map<string, ServiceChannel>();
  const streams = new Set<AbortController>();
  let stopping = false;

  // ---- chaincode: install store, runtime, registry, endorser, gateway ------------------------
  const installs = createInstallStore({ dataDir: config.dataDir });
  const transient = await openTransientStore(config.dataDir);
  // With TLS on, launched chaincode connects over mutual TLS with pairs from a CA this peer makes
  // for itself at each start (as Fabric's peer does); only processes it started can register.
  let chaincodeTls: ChaincodeListenerTls | undefined;
  if (config.tls) {
    const ca = await createEphemeralTlsCa(`chaincode-tlsca.${config.id}`);
    const server = await ca.issueServer(`chaincode.${config.id}`, ['127.0.0.1', 'localhost']);
    chaincodeTls = {
      certPem: server.certPem,
      keyPem: server.keyPem,
      rootCertPem: ca.certPem,
      issueClient: (packageId) => ca.issueClient(packageId),
      dir: join(config.dataDir, 'chaincode-tls'),
    };
  }
  const runtime = createChaincodeRuntime({
    packages: (packageId) => installs.resolveLaunch(packageId),
    peerMspId: config.mspId,
    listenPort: config.chaincodePort ?? 0,
    executeTimeoutMs: config.chaincodeExecuteTimeoutMs,
    logger: childLogger(log, 'chaincode'),
    ...(chaincodeTls ? { tls: chaincodeTls } : {}),
  });
  await runtime.start();
  const ccRegistry = createChaincodeRegistry({ mspId: config.mspId });

  let reloadableTls: ReloadableTls | undefined;
  let opsTls: ReloadableTls | undefined;
  let extraCaPems: string[] = [];
  /** The TLS roots of every open channel: whom the listener trusts (mutual TLS) besides caFiles. */
  const channelTlsRoots = (): string[] =>
    [
      ...new Set(
        [...open.values()].flatMap((c) => {
          const cfg = c.ledger.config();
          return cfg ? tlsTrustOf(mspConfigsOf(cfg)) : [];
        }),
      ),
    ].sort();
  if (config.tls) {
    reloadableTls = await createReloadableTls({
      certFile: config.tls.certFile,
      keyFile: config.tls.keyFile,
      caFiles: config.tls.caFiles ?? [],
      clientAuthRequired: config.tls.clientAuthRequired ?? false,
      trustedRoots: channelTlsRoots,
      logger: childLogger(log, 'tls'),
      registry,
      name: 'peer',
    });
    extraCaPems = (await readCaFiles(config.tls.caFiles ?? [])).map((p) => p.toString());
  }
  if (config.operationsTls) {
    opsTls = await createReloadableTls({
      ...config.operationsTls,
      logger: childLogger(log, 'tls'),
      registry,
      name: 'operations',
    });
  }
  const stopTlsSignal = reloadTlsOnSignal([reloadableTls, opsTls].filter((t): t is ReloadableTls => t !== undefined));
  // This peer presents its (renewed, reloaded) TLS pair to orderers and other peers that ask for one.
  const ownTlsPair = () => reloadableTls?.currentPair();
  const plainTransport = createPlainHttpTransport();
  let httpsTransport: { roots: string; client: HttpsClient } | undefined;
  /** Every joined channel's TLS roots plus configured extra CAs: what https calls trust. */
  const trustRoots = (): string[] => [
    ...new Set([
      ...extraCaPems,
      ...[...open.values()].flatMap((c) => {
        const cfg = c.ledger.config();
        return cfg ? tlsTrustOf(mspConfigsOf(cfg)) : [];
      }),
    ]),
  ];
  const deliverFetch = createTlsFetch({ roots: trustRoots, clientPair: ownTlsPair });
  /** Peer-to-peer and orderer calls: https URLs trust every joined channel's TLS roots. */
  const transport = (): GatewayTransport => {
    const roots = trustRoots();
    if (roots.length === 0) return plainTransport;
    const pair = ownTlsPair();
    const key = `${roots.join('\n')}\n${reloadableTls?.current().serial ?? ''}`;
    if (httpsTransport?.roots !== key) {
      // Requests in flight (endorsements, broadcasts waiting for their block) finish on the old
      // connections; new ones use the renewed pair or the changed roots.
      httpsTransport?.client.retire();
      httpsTransport = {
        roots: key,
        client: createHttpsClient({
          ca: roots,
          // A broadcast holds its connection until its block is cut: 16 sockets would cap in-flight
          // submissions (and remote endorsements) per orderer/peer far below the gateway's load.
          maxSockets: 1024,
          ...(pair ? { cert: pair.cert, key: pair.key } : {}),
        }),
      };
    }
    return createMixedTransport(plainTransport, httpsTransport.client);
  };
  let selfUrl: string | undefined;
  const services = createPeerServices({
    mspId: config.mspId,
    identity,
    sign: (m) => signer.sign(m),
    // This peer's own endorsements are remembered as valid: committing them verifies nothing again.
    onEndorsementSigned: (signed) => verifier.rememberOwn({ certPem: enrollmentPem, ...signed }),
    channel: (id) => open.get(id),
    registry: ccRegistry,
    runtime,
    installs,
    selfUrl: () => selfUrl,
    selfNames: [config.id],
    scheme: config.tls ? 'https' : 'http',
    staticPeers: config.peers ?? [],
    orderers: config.orderers,
    transport,
    executeTimeoutMs: config.chaincodeExecuteTimeoutMs,
    logger: childLogger(log, 'services'),
    transient,
  });

  const gossip = config.gossip?.enabled
    ? await startGossip({
        config: config.gossip,
        nodeId: config.id,
        mspId: config.mspId,
        certPem: msp.signingIdentity.certPem,
        signer,
        keyFile: join(config.dataDir, 'gossip', 'libp2p.key'),
        channels: () => [...open.keys()],
        channelConfig: (id) => open.get(id)?.ledger.config(),
        commit: (id, block) => {
          const ch = channels.get(id);
          if (!ch) throw new LoomError(PeerErrorCode.CHANNEL_NOT_JOINED, `channel ${id} not joined`);
          return ch.ledger.commitBlock(block).then((r) => {
            commitHistogram.observe({ channel: id }, r.durationMs / 1000);
            return r;
          });
        },
        scheme: config.tls ? 'https' : 'http',
        getJson: async (url) => {
          const r = await transport().request({ method: 'GET', url, headers: {}, timeoutMs: 5_000 });
          if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
          return JSON.parse(new TextDecoder().decode(r.body));
        },
        // Blocks caught up from an org peer bring their private data from it (gossip/private-data.ts).
        privateData: services.privateData,
        logger: childLogger(log, 'gossip'),
        registry,
      })
    : undefined;

  async function openChannel(channelId: string): Promise<ChannelLedger> {
    const gate = new CommitGate();
    const ledger = await openChannelLedger({
      dataDir: config.dataDir,
      channelId,
      ...(config.ledgerWriteBufferMB === undefined ? {} : { writeBufferMB: config.ledgerWriteBufferMB }),
      logger: childLogger(log, 'ledger', { channel: channelId }),
      signatureVerifier: verifier,
      commitGate: gate,
      chaincodePolicy: (ns, cfg) =>
        (ns === GOVERNANCE_NAMESPACE ? governanceEndorsementPolicyOf(cfg) : undefined) ??
        ccRegistry.endorsementPolicyFor(channelId, ns) ??
        ((options.undefinedChaincodesUseChannelEndorsement ?? config.undefinedChaincodesUseChannelEndorsement)
          ? cfg.policies.Endorsement?.rule
          : undefined),
      collectionPolicy: (ns, coll) => ccRegistry.collectionPolicyFor(channelId, ns, coll),
      privateData: services.privateData?.ledgerHook(channelId),
      afterCommit: async (b) => {
        const lifecycle = touchesLifecycle(b.namespaces.map((namespace) => ({ namespace })));
        if (b.config || lifecycle || b.blockNum === 0) await services.reload(channelId);
        if (lifecycle) await services.createIndexes(channelId);
        // An approved proposal's config update goes to the orderers from every member peer, in the
        // background (never holding up the commit queue); the orderer keeps one.
        if (b.namespaces.includes(GOVERNANCE_NAMESPACE) && !stopping) {
          const ledger = open.get(channelId)?.ledger;
          if (ledger) {
            void submitApprovedProposals(ledger, (e) => services.gateway.broadcast(e), log).catch((e: unknown) =>
              log.warn({ channel: channelId, err: (e as Error).message }, 'governance submit'),
            );
          }
        }
      },
    });
    open.set(channelId, { ledger, gate });
    await services.reload(channelId);
    heightGauge.set({ channel: channelId }, ledger.height());
    ledger.onCommit((b) => {
      heightGauge.set({ channel: channelId }, b.blockNum + 1);
      for (const c of b.codes) txCounter.inc({ channel: channelId, validation_code: txValidationCodeName(c) });
    });
    return ledger;
  }

  function startDelivery(channelId: string, ledger: ChannelLedger): DeliverClient | undefined {
    const timed = {
      height: () => ledger.height(),
      commitBlock: async (b: Bytes) => {
        const r = await ledger.commitBlock(b);
        commitHistogram.observe({ channel: channelId }, r.durationMs / 1000);
        log.debug(
          { channel: channelId, blockNum: r.blockNum, validTxs: r.validTxs, ms: r.durationMs },
          'block committed',
        );
        return r;
      },
    };
    const client =
      config.orderers.length === 0
        ? undefined
        : createDeliverClient({
            channelId,
            orderers: config.orderers,
            signer: deliverSigner,
            ledger: timed,
            logger: childLogger(log, 'deliver', { channel: channelId }),
            fetch: deliverFetch,
          });
    // With gossip, the org's leader election decides when this peer pulls from the orderers.
    if (gossip) gossip.blocks.addChannel(channelId, ledger, client);
    else client?.start();
    return client;
  }

  async function joinChannel(genesis: Bytes): Promise<{ channelId: string; height: number }> {
    let channelId: string;
    try {
      const cfg = decodeConfigEnvelopeFromBlock(decodeBlock(genesis));
      if (!cfg) throw new Error('not a config block');
      channelId = cfg.channelId;
    } catch (e) {
      throw badRequest(`the body must be a channel's genesis block: ${(e as Error).message}`);
    }
    if (channels.has(channelId)) {
      throw new LoomError(PeerErrorCode.CHANNEL_ALREADY_JOINED, `already joined ${channelId}`, {
        httpStatus: 409,
        details: { channelId },
      });
    }
    const ledger = await openChannel(channelId);
    try {
      if (ledger.height() === 0) await ledger.commitBlock(genesis);
    } catch (e) {
      open.delete(channelId);
      await ledger.close();
      throw e;
    }
    channels.set(channelId, { ledger, gate: open.get(channelId)!.gate, deliver: startDelivery(channelId, ledger) });
    // Trust the new channel's TLS roots now rather than at the next trust check.
    await reloadableTls?.reload();
    log.info({ channel: channelId, height: ledger.height() }, 'joined channel');
    return { channelId, height: ledger.height() };
  }

  // Every ledger already on disk, then the configured channels not yet joined.
  const onDisk = await readdir(join(config.dataDir, 'ledgers')).catch(() => [] as string[]);
  for (const name of onDisk.sort()) {
    let ledger: ChannelLedger;
    try {
      ledger = await openChannel(name);
    } catch (e) {
      log.error({ channel: name, err: (e as Error).message }, 'cannot open the ledger found on disk: skipped');
      continue;
    }
    if (ledger.height() === 0 && !config.channels.some((c) => c.name === name && c.genesisBlock)) {
      open.delete(name);
      await ledger.close();
      continue;
    }
    await services.createIndexes(name);
    channels.set(name, { ledger, gate: open.get(name)!.gate, deliver: undefined });
  }
  for (const c of config.channels) {
    const ch = channels.get(c.name);
    if (ch && ch.ledger.height() > 0) continue;
    if (ch) {
      open.delete(c.name);
      await ch.ledger.close();
      channels.delete(c.name);
    }
    if (!c.genesisBlock) {
      log.warn({ channel: c.name }, 'channel configured without a genesis block and no ledger on disk: not joined');
      continue;
    }
    await joinChannel(new Uint8Array(await readFile(c.genesisBlock)));
  }
  for (const [name, ch] of channels) {
    if (!ch.deliver) channels.set(name, { ...ch, deliver: startDelivery(name, ch.ledger) });
  }
  // The ledgers reopened from disk bring their channels' TLS roots before the listener opens.
  await reloadableTls?.reload();

  const requireChannel = (channelId: string): ChannelLedger => {
    const ch = channels.get(channelId);
    if (!ch) {
      throw new LoomError(PeerErrorCode.CHANNEL_NOT_JOINED, `this peer has not joined channel ${channelId}`, {
        httpStatus: 404,
        details: { channelId },
      });
    }
    return ch.ledger;
  };

  const app = buildApi();
  const ops: OperationsServer = createOperationsServer({
    host: config.operations.host,
    port: config.operations.port,
    logger: childLogger(log, 'operations'),
    registry,
    ...(opsTls ? { reloadableTls: opsTls } : {}),
    healthChecks: [
      {
        name: 'ledger',
        check: async () => {
          if (stopping) throw new Error('stopping');
        },
      },
    ],
  });

  try {
    await app.listen({ host: config.listen.host, port: config.listen.port });
  } catch (e) {
    // Nothing else may keep running after a failed start (an in-process caller carries on).
    await gossip?.stop();
    await Promise.all([...channels.values()].map((c) => c.deliver?.stop()));
    await runtime.stop();
    reloadableTls?.close();
    opsTls?.close();
    stopTlsSignal();
    for (const c of channels.values()) await c.ledger.close();
    await transient.close();
    await verifier.close();
    throw new LoomError('PEER_LISTEN_FAILED', `peer cannot listen on ${config.listen.host}:${config.listen.port}`, {
      cause: e,
      httpStatus: 500,
    });
  }
  if (reloadableTls) reloadableTls.attach(app.server as unknown as TlsServer);
  const addr = app.server.address() as AddressInfo;
  selfUrl = `${config.tls ? 'https' : 'http'}://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  const url = `${config.tls ? 'https' : 'http'}://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  const opsAddr = await ops.start();
  log.info({ url, operations: opsAddr.url, channels: [...channels.keys()] }, 'peer started');
  // Missing private data (also recorded before a restart) is pulled from member peers in the background.
  services.privateData?.start(() => [...channels.keys()]);

  function buildApi(): FastifyInstance {
    const root = Fastify({
      loggerInstance: childLogger(log, 'api'),
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: 128 * 1024 * 1024,
      // Event streams are long-lived; stopping the peer ends them.
      forceCloseConnections: true,
      ...(reloadableTls ? { https: reloadableTls.serverOptions() } : {}),
    }) as unknown as FastifyInstance;
    installLoomErrorHandling(root);
    // The gateway and the peer's own routes each parse octet-stream bodies in their own scope.
    void root.register(async (scope) => {
      // Submitted envelopes are checked by the pool the ledgers verify blocks with: the commit then
      // finds each locally submitted transaction's creator signature in its cache.
      await registerGateway(scope, {
        dependencies: { ...services.gateway, signatureVerifier: verifier },
        bodyLimit: 128 * 1024 * 1024,
      });
    });
    void root.register(async (api) => {
      peerApi(api);
    });
    return root;
  }

  function peerApi(api: FastifyInstance): void {
    api.addContentTypeParser(
      ['application/octet-stream', BLOCK_STREAM_CONTENT_TYPE],
      { parseAs: 'buffer' },
      (_req, body, done) => done(null, body),
    );
    type P<T> = { Params: T; Querystring: Record<string, string | undefined> };

    api.post(peerRoutes.joinChannel.path, async (req: FastifyRequest, reply) => {
      // Until admin-signed join requests (governance), only a client on this machine may join.
      if (!LOOPBACK.has(req.socket.remoteAddress ?? '')) {
        throw new LoomError(PeerErrorCode.FORBIDDEN, 'channel join is accepted from localhost only', {
          httpStatus: 403,
        });
      }
      const body = req.body;
      if (!(body instanceof Uint8Array) || body.length === 0) {
        throw badRequest('the body must be the genesis block bytes (application/octet-stream)');
      }
      const r = await joinChannel(new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
      return reply.code(201).send(r);
    });

    // This peer's gossip address, for other orgs' peers that know it as a channel anchor peer.
    api.get(peerRoutes.gossipEndpoint.path, async () => {
      if (!gossip)
        throw new LoomError(PeerErrorCode.NOT_FOUND, 'gossip is not enabled on this peer', { httpStatus: 404 });
      return gossip.endpoint();
    });

    api.get(peerRoutes.listChannels.path, async () => ({
      channels: [...channels.entries()].map(([name, ch]) => ({ name, height: ch.ledger.height() })),
    }));

    api.get<P<{ channel: string }>>(peerRoutes.height.path, async (req) => {
      const ledger = requireChannel(req.params.channel);
      return { channelId: ledger.channelId, height: ledger.height() };
    });

    api.get<P<{ channel: string; number: string }>>(peerRoutes.block.path, async (req, reply) => {
      const ledger = requireChannel(req.params.channel);
      const n = parseBlockNumber(req.params.number, 'number');
      const block = await ledger.getBlock(n);
      if (!block) {
        throw new LoomError(PeerErrorCode.NOT_FOUND, `block ${n} not committed (height ${ledger.height()})`, {
          httpStatus: 404,
        });
      }
      return reply.type('application/octet-stream').send(Buffer.from(encodeBlock(block)));
    });

    api.get<P<{ channel: string; txId: string }>>(peerRoutes.tx.path, async (req) => {
      const ledger = requireChannel(req.params.channel);
      if (!/^[0-9a-f]{64}$/.test(req.params.txId)) throw badRequest('txId must be 64 lowercase hex digits');
      const loc = await ledger.getTxLocation(req.params.txId);
      if (!loc)
        throw new LoomError(PeerErrorCode.NOT_FOUND, `transaction ${req.params.txId} not found`, { httpStatus: 404 });
      return {
        txId: req.params.txId,
        blockNum: loc.blockNum,
        txNum: loc.txNum,
        validationCode: loc.validationCode,
        validationCodeName: txValidationCodeName(loc.validationCode),
      };
    });

    api.get<P<{ channel: string; namespace: string; key: string }>>(peerRoutes.state.path, async (req) => {
      if (!config.debugStateApi) {
        throw new LoomError(
          PeerErrorCode.FORBIDDEN,
          'the debug state API is disabled (debugStateApi: true enables it)',
          {
            httpStatus: 403,
          },
        );
      }
      const ledger = requireChannel(req.params.channel);
      const v = await ledger.getState(req.params.namespace, req.params.key);
      if (!v) throw new LoomError(PeerErrorCode.NOT_FOUND, 'key not found', { httpStatus: 404 });
      return { namespace: req.params.namespace, key: req.params.key, value: toBase64(v.value), version: v.version };
    });

    const signedDigest = async (ledger: ChannelLedger) => {
      const digest = ledger.digest();
      const body: SignedDigestJson = {
        digest: digestToJson(digest),
        signature: toBase64(await signer.sign(encodeLedgerDigest(digest))),
        signer: { mspId: config.mspId, certPem: msp.signingIdentity!.certPem },
      };
      return { digest, body };
    };

    api.get<P<{ channel: string }>>(peerRoutes.digest.path, async (req) => {
      return (await signedDigest(requireChannel(req.params.channel))).body;
    });

    api.get<P<{ channel: string; txId: string }>>(peerRoutes.txProof.path, async (req) => {
      const ledger = requireChannel(req.params.channel);
      const { digest, body } = await signedDigest(ledger);
      const proof = await ledger.proveTx(req.params.txId, digest);
      return { signedDigest: body, proof: txProofToJson(proof) };
    });

    api.get<P<{ channel: string; namespace: string; key: string }>>(peerRoutes.keyProof.path, async (req) => {
      const ledger = requireChannel(req.params.channel);
      const version = req.query.version === undefined ? undefined : parseVersion(req.query.version);
      const { digest, body } = await signedDigest(ledger);
      const proof = await ledger.proveKey(req.params.namespace, req.params.key, version, digest);
      return { signedDigest: body, proof: keyProofToJson(proof) };
    });

    /** A long-lived stream of frames, until the client goes or the peer stops. */
    const frameStream = (req: FastifyRequest, frames: (signal: AbortSignal) => AsyncIterable<Bytes>) => {
      const abort = new AbortController();
      req.raw.on('close', () => abort.abort());
      streams.add(abort);
      return Readable.from(
        (async function* () {
          try {
            for await (const f of frames(abort.signal)) yield Buffer.from(encodeFrame(f));
          } finally {
            streams.delete(abort);
          }
        })(),
      );
    };

    api.get<P<{ channel: string }>>(peerRoutes.blockEvents.path, async (req, reply) => {
      const ledger = requireChannel(req.params.channel);
      const start = req.query.start === undefined ? null : parseBlockNumber(req.query.start, 'start');
      const filtered = req.query.filtered === 'true' || req.query.filtered === '1';
      reply.header('content-type', BLOCK_STREAM_CONTENT_TYPE);
      return reply.send(
        frameStream(req, async function* (signal) {
          for await (const bytes of committedBlocks(ledger, start, signal)) {
            if (!filtered) yield bytes;
            else {
              const block = decodeBlock(bytes);
              const n = decodeBlockHeader(block.header).number;
              yield encodeFilteredBlock(n, block.data, block.metadata.txValidationCodes);
            }
          }
        }),
      );
    });

    api.get<P<{ channel: string; chaincode: string }>>(peerRoutes.chaincodeEvents.path, async (req, reply) => {
      const ledger = requireChannel(req.params.channel);
      const start = req.query.start === undefined ? null : parseBlockNumber(req.query.start, 'start');
      reply.header('content-type', BLOCK_STREAM_CONTENT_TYPE);
      return reply.send(
        frameStream(req, async function* (signal) {
          for await (const e of committedChaincodeEvents(ledger, req.params.chaincode, start, signal)) {
            yield encodeChaincodeEventFrame(e);
          }
        }),
      );
    });

    const requireLoopback = (req: FastifyRequest, what: string) => {
      if (!LOOPBACK.has(req.socket.remoteAddress ?? '')) {
        throw new LoomError(PeerErrorCode.FORBIDDEN, `${what} is accepted from localhost only`, { httpStatus: 403 });
      }
    };

    // Private data push (dissemination) and pull (reconciliation) between peers: each request is
    // signed by the sending peer and answered only for members of the collection (privdata/transport.ts).
    for (const kind of ['push', 'pull'] as const) {
      api.post(privateDataRoutes[kind].path, async (req: FastifyRequest, reply) => {
        const pd = services.privateData;
        if (!pd) throw new LoomError(PeerErrorCode.NOT_FOUND, 'private data is not enabled', { httpStatus: 404 });
        const body = req.body;
        if (!(body instanceof Uint8Array) || body.length === 0) {
          throw badRequest('the body must be a signed private data request (application/octet-stream)');
        }
        const r = await pd.handle(kind, new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
        if (r instanceof Uint8Array) return reply.type('application/octet-stream').send(Buffer.from(r));
        return r;
      });
    }

    // Chaincode install (the package bytes) and the installed list: localhost only, like channel join.
    api.post(peerRoutes.installChaincode.path, async (req: FastifyRequest, reply) => {
      requireLoopback(req, 'chaincode install');
      const body = req.body;
      if (!(body instanceof Uint8Array) || body.length === 0) {
        throw badRequest('the body must be the chaincode package bytes (application/octet-stream)');
      }
      const r = await installs.install(new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
      // A package installed after its definition was committed brings its indexes now.
      for (const name of channels.keys()) await services.createIndexes(name);
      return reply
        .code(r.alreadyInstalled ? 200 : 201)
        .send({ packageId: r.packageId, label: r.label, type: r.type, alreadyInstalled: r.alreadyInstalled });
    });

    api.get(peerRoutes.installedChaincodes.path, async (req: FastifyRequest) => {
      requireLoopback(req, 'the installed chaincode list');
      const installed = await installs.queryInstalled();
      const references = (packageId: string) =>
        [...channels.keys()].flatMap((channel) =>
          ccRegistry
            .list(channel)
            .filter((c) => c.packageId === packageId)
            .map((c) => ({ channel, name: c.name, version: c.version, sequence: c.sequence })),
        );
      return {
        installed: installed.map((i) => ({
          packageId: i.packageId,
          label: i.label,
          type: i.type,
          references: references(i.packageId),
        })),
      };
    });

    api.get<P<{ packageId: string }>>(peerRoutes.installedPackage.path, async (req, reply) => {
      requireLoopback(req, 'the installed chaincode package');
      const bytes = await installs.getInstalledPackage(req.params.packageId);
      return reply.type('application/octet-stream').send(Buffer.from(bytes));
    });
  }

  return {
    id: config.id,
    url,
    operationsUrl: opsAddr.url,
    channels: () => [...channels.keys()],
    ledger: requireChannel,
    joinChannel,
    async stop() {
      if (stopping) return;
      stopping = true;
      for (const s of streams) s.abort();
      await gossip?.stop();
      await Promise.all([...channels.values()].map((c) => c.deliver?.stop()));
      await app.close();
      await ops.stop();
      await runtime.stop();
      await services.privateData?.stop();
      for (const c of channels.values()) await c.ledger.close();
      await transient.close();
      reloadableTls?.close();
      opsTls?.close();
      stopTlsSignal();
      httpsTransport?.client.close();
      await verifier.close();
      log.info('peer stopped');
    },
  };
}
