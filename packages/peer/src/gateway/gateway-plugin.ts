/**
 * The peer gateway's HTTP API as a fastify plugin, built from the route declarations in
 * @loom/common/gateway (the SDK builds its calls from the same ones). Everything that touches the
 * peer's internals — endorsers, the orderer client, the committer's notifications, the ledger — is
 * injected, so the plugin holds only the gateway's rules:
 *
 * - endorse: plan endorsers for the chaincode's policy (or the organizations the client named),
 *   collect their responses, require status < 400 and byte-identical ProposalResponse payloads
 *   (docs/protocol.md "Endorsements agree when…"), and answer the transaction Payload to sign;
 * - submit: the envelope must be signed by the creator in its own header before it is broadcast;
 * - signed requests (commit status, events, proofs) must be signed by their creator and fresh.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import {
  buildTransactionPayload,
  type Bytes,
  bytesEqual,
  decodeChaincodeAction,
  decodeChaincodeProposalPayload,
  decodeChannelHeader,
  decodeEnvelope,
  decodeHeader,
  decodePayload,
  decodeProposal,
  decodeProposalResponse,
  decodeProposalResponsePayload,
  decodeSerializedIdentity,
  decodeSignatureHeader,
  decodeSignedProposal,
  type Endorsement,
  fromUtf8,
  HeaderType,
  LoomError,
  loomErrorHandler,
  type Response,
  type SerializedIdentity,
  sha256Hex,
  txValidationCodeName,
  verify,
} from '@loom/common';
import {
  type ChaincodeEventFrame,
  type EndorserErrorDetail,
  encodeGatewayFrame,
  FRAME_STREAM_CONTENT_TYPE,
  GATEWAY_CONTENT_TYPE,
  GatewayErrorCode,
  gatewayRoutes,
  type RequestAuth,
  type Signed,
  type SignedLedgerDigest,
  type StreamRoute,
  type UnaryRoute,
  type WireRequest,
} from '@loom/common/gateway/index';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { KeyProof, TxProof } from '../ledger/proofs.js';
import type { SignatureVerifier } from '../validation/signature-verifier.js';
import type { EndorserTarget } from './endorsement-plan.js';

/** What one endorser answered: its ProposalResponse bytes, or why it could not. */
export type EndorserOutcome = EndorserTarget &
  (
    | { readonly ok: true; readonly proposalResponse: Bytes }
    | { readonly ok: false; readonly code: string; readonly message: string }
  );

export type GatewayAction = 'submit' | 'commit-status' | 'events' | 'proof';

export interface GatewayDependencies {
  /** The MSP of the peer serving this gateway. */
  readonly localMspId: string;
  /**
   * Peers to ask for endorsements: one per organization of a minimal set satisfying the
   * chaincode's endorsement policy, local organization first (see `planEndorsement`). When the
   * client names `organizations`, exactly one peer of each of those.
   */
  planEndorsers(
    channel: string,
    chaincode: string,
    options: {
      readonly organizations?: readonly string[];
      readonly collections?: readonly string[];
      /** The proposal being planned, for plans that depend on its function (e.g. `_lifecycle` approvals). */
      readonly signedProposal?: Bytes;
    },
  ): Promise<readonly EndorserTarget[]> | readonly EndorserTarget[];
  /** Sends the signed proposal to each target (the local endorser or `POST /v1/peer/process-proposal`). */
  endorse(signedProposal: Bytes, targets: readonly EndorserTarget[]): Promise<readonly EndorserOutcome[]>;
  /** Runs the proposal on one peer (local first, or one of `organizations`) without ordering. */
  evaluate(signedProposal: Bytes, organizations: readonly string[]): Promise<EndorserOutcome>;
  /** Hands the envelope to the ordering service (failing over between its orderers); resolves once accepted. */
  broadcast(envelope: Bytes): Promise<unknown>;
  /** Resolves when `txId` is committed on this peer, or undefined after `timeoutMs`. */
  commitStatus(
    channel: string,
    txId: string,
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<{ readonly blockNumber: number; readonly validationCode: number } | undefined>;
  /**
   * Committed blocks (encoded, validation codes filled) from `startBlock` on (null: from the next
   * block committed). Throw synchronously for an unknown channel, so the client gets an error answer.
   */
  blockEvents?(channel: string, startBlock: number | null, signal: AbortSignal): AsyncIterable<Bytes>;
  /** Chaincode events of valid transactions from `startBlock` on, in ledger order. */
  chaincodeEvents?(
    channel: string,
    chaincode: string,
    startBlock: number | null,
    signal: AbortSignal,
  ): AsyncIterable<ChaincodeEventFrame>;
  digest?(channel: string): Promise<SignedLedgerDigest>;
  txProof?(channel: string, txId: string): Promise<TxProof>;
  keyProof?(channel: string, namespace: string, key: string): Promise<KeyProof>;
  /** This peer's endorser, for other gateways (`POST /v1/peer/process-proposal`). */
  processProposal?(signedProposal: Bytes, minHeight?: number): Promise<Bytes>;
  /** Channel access control for a verified requester (MSP membership, Readers/Writers); throw to refuse. */
  authorize?(action: GatewayAction, channel: string, creator: SerializedIdentity): Promise<void> | void;
  /**
   * Checks a submitted envelope's creator signature. The peer passes the pool its ledgers verify
   * blocks with, so the commit finds that signature in the pool's result cache instead of verifying
   * it again. Without it the gateway verifies on its own thread.
   */
  readonly signatureVerifier?: SignatureVerifier;
  /** Milliseconds since the epoch; injected for tests. */
  readonly clock?: () => number;
}

export interface GatewayPluginOptions {
  readonly dependencies: GatewayDependencies;
  /** Longest a commit-status request may wait. Default 60 s. */
  readonly maxCommitWaitMs?: number;
  /** Accepted distance between a signed request's timestamp and this clock. Default 5 min. */
  readonly maxClockSkewMs?: number;
  /** Request body limit in bytes. Default 16 MiB. */
  readonly bodyLimit?: number;
}

const badRequest = (message: string, cause?: unknown) =>
  new LoomError(GatewayErrorCode.BAD_REQUEST, message, { httpStatus: 400, ...(cause ? { cause } : {}) });

interface ProposalView {
  readonly channel: string;
  readonly txId: string;
  readonly chaincode: string;
  readonly headerBytes: Bytes;
  readonly inputBytes: Bytes;
}

function readProposal(signedProposal: Bytes): ProposalView {
  try {
    const proposal = decodeProposal(decodeSignedProposal(signedProposal).proposalBytes);
    const ch = decodeChannelHeader(decodeHeader(proposal.header).channelHeader);
    if (ch.type !== HeaderType.ENDORSER_TRANSACTION) throw new Error('not an endorser transaction proposal');
    return {
      channel: ch.channelId,
      txId: ch.txId,
      chaincode: fromUtf8(ch.extension),
      headerBytes: proposal.header,
      inputBytes: decodeChaincodeProposalPayload(proposal.payload).input,
    };
  } catch (e) {
    throw badRequest(`malformed signed proposal: ${(e as Error).message}`, e);
  }
}

/** Keys of certificates already seen; a gateway meets the same few client certificates over and over. */
class CertificateKeys {
  readonly #keys = new Map<string, KeyObject>();
  keyOf(certPem: string): KeyObject {
    let k = this.#keys.get(certPem);
    if (!k) {
      try {
        k = createPublicKey(certPem);
      } catch (e) {
        throw new LoomError(GatewayErrorCode.BAD_SIGNATURE, 'creator certificate unreadable', {
          httpStatus: 401,
          cause: e,
        });
      }
      if (this.#keys.size >= 1024) this.#keys.delete(this.#keys.keys().next().value as string);
      this.#keys.set(certPem, k);
    }
    return k;
  }
}

/** The status of a gateway error summarising endorser failures. */
function endorserFailureStatus(code: string): number {
  if (code.endsWith('NOT_FOUND')) return 404;
  if (code === GatewayErrorCode.CHAINCODE_ERROR) return 400;
  return 502;
}

function failureError(what: string, txId: string, failures: EndorserErrorDetail[]): LoomError {
  const codes = new Set(failures.map((f) => f.code));
  // One shared reason (an unknown chaincode, a chaincode error) is more useful than a generic code.
  const code = codes.size === 1 ? failures[0]!.code : GatewayErrorCode.ENDORSEMENT_FAILED;
  const summary = failures.map((f) => `${f.mspId} (${f.endpoint}): ${f.code}: ${f.message}`).join('; ');
  return new LoomError(code, `${what} failed for transaction ${txId}: ${summary}`, {
    httpStatus: endorserFailureStatus(code),
    details: { txId, endorsers: failures },
  });
}

interface CheckedResponse {
  readonly target: EndorserTarget;
  readonly response: Response;
  readonly payload: Bytes;
  readonly endorsement: Endorsement | null;
}

function checkOutcome(o: EndorserOutcome): CheckedResponse | EndorserErrorDetail {
  const target = { mspId: o.mspId, endpoint: o.endpoint };
  if (!o.ok) return { ...target, code: o.code, message: o.message };
  try {
    const pr = decodeProposalResponse(o.proposalResponse);
    if (pr.response.status >= 400) {
      return {
        ...target,
        code: GatewayErrorCode.CHAINCODE_ERROR,
        message: `${pr.response.status}: ${pr.response.message}`,
      };
    }
    return { target, response: pr.response, payload: pr.payload, endorsement: pr.endorsement };
  } catch (e) {
    return { ...target, code: 'BAD_PROPOSAL_RESPONSE', message: (e as Error).message };
  }
}

const isFailure = (x: CheckedResponse | EndorserErrorDetail): x is EndorserErrorDetail => 'code' in x;

async function readBody(request: FastifyRequest): Promise<WireRequest> {
  const body = request.body;
  const query = request.query as Record<string, string> | undefined;
  return {
    ...(body instanceof Uint8Array ? { body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) } : {}),
    ...(query ? { query } : {}),
  };
}

/** Registers the gateway routes (and peer-to-peer process-proposal) on `app`'s encapsulated scope. */
export const gatewayPlugin: FastifyPluginAsync<GatewayPluginOptions> = async (app, options) => {
  const deps = options.dependencies;
  const clock = deps.clock ?? Date.now;
  const maxWait = options.maxCommitWaitMs ?? 60_000;
  const maxSkew = options.maxClockSkewMs ?? 5 * 60_000;
  const keys = new CertificateKeys();

  app.setErrorHandler(loomErrorHandler);
  app.addContentTypeParser(
    GATEWAY_CONTENT_TYPE,
    { parseAs: 'buffer', bodyLimit: options.bodyLimit ?? 16 * 1024 * 1024 },
    (_req, body, done) => done(null, body),
  );

  const decodeCreator = (creatorBytes: Bytes): SerializedIdentity => {
    try {
      return decodeSerializedIdentity(creatorBytes);
    } catch (e) {
      throw badRequest(`malformed creator: ${(e as Error).message}`, e);
    }
  };
  const notCreators = (creator: SerializedIdentity) =>
    new LoomError(GatewayErrorCode.BAD_SIGNATURE, 'signature is not the creator’s', {
      httpStatus: 401,
      details: { mspId: creator.mspId },
    });

  /** The requester of a signed structure, after checking it signed `message`. */
  const verifySigned = (creatorBytes: Bytes, message: Bytes, signature: Bytes): SerializedIdentity => {
    const creator = decodeCreator(creatorBytes);
    let ok = false;
    try {
      ok = verify(keys.keyOf(fromUtf8(creator.idBytes)), message, signature);
    } catch (e) {
      if (e instanceof LoomError && e.code === GatewayErrorCode.BAD_SIGNATURE) throw e;
      ok = false;
    }
    if (!ok) throw notCreators(creator);
    return creator;
  };

  /** `verifySigned` through the shared pool when there is one (its answer is cached for the commit). */
  const verifySignedPooled = async (creatorBytes: Bytes, message: Bytes, signature: Bytes) => {
    const pool = deps.signatureVerifier;
    if (!pool) return verifySigned(creatorBytes, message, signature);
    const creator = decodeCreator(creatorBytes);
    let certPem: string;
    try {
      certPem = fromUtf8(creator.idBytes);
    } catch {
      throw notCreators(creator);
    }
    const [ok] = await pool.verifyMany([{ certPem, message, signature }]);
    if (ok !== true) throw notCreators(creator);
    return creator;
  };

  const checkSignedRequest = async <T extends RequestAuth>(s: Signed<T>, action: GatewayAction) => {
    const creator = verifySigned(s.request.creator, s.signed.request, s.signed.signature);
    const skew = Math.abs(clock() - s.request.timestamp);
    if (skew > maxSkew) {
      throw new LoomError(GatewayErrorCode.REQUEST_EXPIRED, `request timestamp is ${skew} ms from the gateway clock`, {
        httpStatus: 401,
        details: { skewMs: skew, maxSkewMs: maxSkew },
      });
    }
    await deps.authorize?.(action, s.request.channel, creator);
    return creator;
  };

  function unary<Req, Res>(route: UnaryRoute<Req, Res>, handler: (req: Req, reply: FastifyReply) => Promise<Res>) {
    app.route({
      method: route.method,
      url: route.path,
      handler: async (request, reply) => {
        const req = route.request.fromWire(await readBody(request));
        const res = await handler(req, reply);
        return reply
          .code(route.successStatus)
          .type(GATEWAY_CONTENT_TYPE)
          .send(Buffer.from(route.response.encode(res)));
      },
    });
  }

  function streamed<Req, F>(
    route: StreamRoute<Req, F>,
    open: (req: Req, signal: AbortSignal) => Promise<AsyncIterable<F>>,
  ) {
    app.route({
      method: route.method,
      url: route.path,
      handler: async (request, reply) => {
        const req = route.request.fromWire(await readBody(request));
        const abort = new AbortController();
        const source = await open(req, abort.signal);
        await pipeFrames(request, reply, abort, source, route.frame.encode);
      },
    });
  }

  unary(gatewayRoutes.evaluate, async (req) => {
    const p = readProposal(req.signedProposal);
    const outcome = checkOutcome(await deps.evaluate(req.signedProposal, req.organizations));
    if (isFailure(outcome)) throw failureError('evaluation', p.txId, [outcome]);
    return outcome.response;
  });

  unary(gatewayRoutes.endorse, async (req) => {
    const p = readProposal(req.signedProposal);
    const targets = await deps.planEndorsers(p.channel, p.chaincode, {
      ...(req.organizations.length > 0 ? { organizations: req.organizations } : {}),
      signedProposal: req.signedProposal,
    });
    if (targets.length === 0) {
      throw new LoomError(GatewayErrorCode.NO_ENDORSEMENT_PLAN, `no endorsers for ${p.chaincode} on ${p.channel}`, {
        httpStatus: 503,
      });
    }
    const outcomes = (await deps.endorse(req.signedProposal, targets)).map(checkOutcome);
    const failures = outcomes.filter(isFailure);
    if (failures.length > 0) throw failureError('endorsement', p.txId, failures);
    const ok = outcomes as CheckedResponse[];
    const first = ok[0]!;
    if (!ok.every((r) => bytesEqual(r.payload, first.payload))) {
      throw new LoomError(
        GatewayErrorCode.ENDORSEMENT_MISMATCH,
        `endorsers disagree on the result of transaction ${p.txId}`,
        {
          httpStatus: 502,
          details: {
            txId: p.txId,
            endorsers: ok.map((r) => ({
              mspId: r.target.mspId,
              endpoint: r.target.endpoint,
              code: GatewayErrorCode.ENDORSEMENT_MISMATCH,
              message: `payload sha256 ${sha256Hex(r.payload)}`,
            })),
          },
        },
      );
    }
    const missing = ok.find((r) => r.endorsement === null);
    if (missing) {
      throw failureError('endorsement', p.txId, [
        { ...missing.target, code: GatewayErrorCode.ENDORSEMENT_FAILED, message: 'response carries no endorsement' },
      ]);
    }
    // The result the client sees is the one the endorsers signed, not the unsigned outer Response.
    const action = decodeChaincodeAction(decodeProposalResponsePayload(first.payload).extension);
    return {
      txId: p.txId,
      preparedTransaction: buildTransactionPayload(
        { headerBytes: p.headerBytes, inputBytes: p.inputBytes },
        first.payload,
        ok.map((r) => r.endorsement!),
      ),
      result: action.response,
    };
  });

  unary(gatewayRoutes.submit, async (envelopeBytes) => {
    let txId: string;
    let channel: string;
    let creatorBytes: Bytes;
    let envelope: { payload: Bytes; signature: Bytes };
    try {
      envelope = decodeEnvelope(envelopeBytes);
      const header = decodeHeader(decodePayload(envelope.payload).header);
      const ch = decodeChannelHeader(header.channelHeader);
      txId = ch.txId;
      channel = ch.channelId;
      creatorBytes = decodeSignatureHeader(header.signatureHeader).creator;
    } catch (e) {
      throw badRequest(`malformed envelope: ${(e as Error).message}`, e);
    }
    const creator = await verifySignedPooled(creatorBytes, envelope.payload, envelope.signature);
    await deps.authorize?.('submit', channel, creator);
    await deps.broadcast(envelopeBytes);
    return { txId };
  });

  unary(gatewayRoutes.commitStatus, async (s, reply) => {
    await checkSignedRequest(s, 'commit-status');
    const { channel, txId } = s.request;
    const timeoutMs = Math.min(s.request.timeoutMs > 0 ? s.request.timeoutMs : maxWait, maxWait);
    const abort = new AbortController();
    // The response's close (not the request's, which fires once the body is read) means the client left.
    const onClose = () => abort.abort();
    reply.raw.once('close', onClose);
    try {
      const status = await deps.commitStatus(channel, txId, timeoutMs, abort.signal);
      if (!status) {
        throw new LoomError(
          GatewayErrorCode.COMMIT_STATUS_TIMEOUT,
          `transaction ${txId} not committed within ${timeoutMs} ms`,
          { httpStatus: 504, details: { txId, channel, timeoutMs } },
        );
      }
      return {
        txId,
        blockNumber: status.blockNumber,
        validationCode: status.validationCode,
        validationCodeName: txValidationCodeName(status.validationCode),
      };
    } finally {
      reply.raw.off('close', onClose);
    }
  });

  const notSupported = (what: string) =>
    new LoomError(GatewayErrorCode.NOT_SUPPORTED, `this gateway does not serve ${what}`, { httpStatus: 501 });

  streamed(gatewayRoutes.chaincodeEvents, async (s, signal) => {
    await checkSignedRequest(s, 'events');
    if (!deps.chaincodeEvents) throw notSupported('chaincode events');
    return deps.chaincodeEvents(s.request.channel, s.request.chaincode, s.request.startBlock, signal);
  });

  streamed(gatewayRoutes.blockEvents, async (s, signal) => {
    await checkSignedRequest(s, 'events');
    if (!deps.blockEvents) throw notSupported('block events');
    return deps.blockEvents(s.request.channel, s.request.startBlock, signal);
  });

  unary(gatewayRoutes.digest, async (req) => {
    if (!deps.digest) throw notSupported('ledger digests');
    return deps.digest(req.channel);
  });

  unary(gatewayRoutes.txProof, async (s) => {
    await checkSignedRequest(s, 'proof');
    if (!deps.txProof) throw notSupported('proofs');
    return deps.txProof(s.request.channel, s.request.txId);
  });

  unary(gatewayRoutes.keyProof, async (s) => {
    await checkSignedRequest(s, 'proof');
    if (!deps.keyProof) throw notSupported('proofs');
    return deps.keyProof(s.request.channel, s.request.namespace, s.request.key);
  });

  if (deps.processProposal) {
    const processProposal = deps.processProposal;
    unary(gatewayRoutes.processProposal, async (req) => processProposal(req.signedProposal, req.minHeight));
  }
};

/**
 * Streams frames until the source ends or the client hangs up, honouring backpressure. Headers go
 * out at once: with nothing new on the ledger the first frame may be a long time coming.
 */
async function pipeFrames<F>(
  request: FastifyRequest,
  reply: FastifyReply,
  abort: AbortController,
  source: AsyncIterable<F>,
  encode: (f: F) => Bytes,
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  const onClose = () => abort.abort();
  res.once('close', onClose);
  res.writeHead(200, { 'content-type': FRAME_STREAM_CONTENT_TYPE, 'cache-control': 'no-store' });
  res.flushHeaders();
  const it = source[Symbol.asyncIterator]();
  try {
    while (!abort.signal.aborted) {
      const next = await Promise.race([
        it.next(),
        new Promise<IteratorResult<F>>((resolve) =>
          abort.signal.addEventListener('abort', () => resolve({ done: true, value: undefined }), { once: true }),
        ),
      ]);
      if (next.done) break;
      if (!res.write(encodeGatewayFrame(encode(next.value)))) {
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.once('drain', done);
          res.once('close', done);
        });
      }
    }
    res.end();
  } catch (e) {
    // Headers are gone: the only way to say "failed" is to cut the stream short.
    request.log.warn({ err: e }, 'event stream failed');
    res.destroy(e instanceof Error ? e : new Error(String(e)));
  } finally {
    res.off('close', onClose);
    void it.return?.();
  }
}

/** Convenience: registers the plugin under its own encapsulated scope. */
export async function registerGateway(app: FastifyInstance, options: GatewayPluginOptions): Promise<void> {
  await app.register(gatewayPlugin, options);
}
