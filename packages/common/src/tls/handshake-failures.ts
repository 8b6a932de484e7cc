/**
 * Refused TLS handshakes, made visible: one log line per refusal (reason, remote address, the
 * certificate's subject when the client sent one) and `loom_tls_handshake_failures_total{reason}`.
 * Node already closes the refused connection and keeps serving everyone else; this only reports.
 */
import type { Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../logging.js';

export const TLS_HANDSHAKE_FAILURES_METRIC = 'loom_tls_handshake_failures_total';

export type TlsHandshakeFailureReason =
  | 'no_client_certificate'
  | 'unknown_ca'
  | 'certificate_expired'
  | 'certificate_not_yet_valid'
  | 'certificate_revoked'
  | 'certificate_invalid'
  | 'rejected_by_client'
  | 'protocol'
  | 'timeout'
  | 'aborted'
  | 'other';

// Node verifies a client's chain after OpenSSL's handshake and reports the result as
// `socket.authorizationError`, an OpenSSL X509_V_ERR name.
const VERIFY_REASONS: Record<string, TlsHandshakeFailureReason> = {
  CERT_HAS_EXPIRED: 'certificate_expired',
  CERT_NOT_YET_VALID: 'certificate_not_yet_valid',
  CERT_REVOKED: 'certificate_revoked',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT: 'unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown_ca',
  SELF_SIGNED_CERT_IN_CHAIN: 'unknown_ca',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'unknown_ca',
  CERT_SIGNATURE_FAILURE: 'unknown_ca',
};

/** The reason label for a `tlsClientError`. */
export function classifyHandshakeFailure(
  error: NodeJS.ErrnoException,
  socket: Pick<TLSSocket, 'authorizationError'> | undefined,
): TlsHandshakeFailureReason {
  const authError = socket?.authorizationError as unknown as string | Error | null | undefined;
  const authCode = typeof authError === 'string' ? authError : (authError as { code?: string } | null)?.code;
  if (authCode) return VERIFY_REASONS[authCode] ?? 'certificate_invalid';
  const code = error.code ?? '';
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') return 'no_client_certificate';
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'timeout';
  // The client sent an alert: it did not accept our certificate.
  if (/^ERR_SSL_(SSLV3|TLSV1|TLSV13)_ALERT_/.test(code)) return 'rejected_by_client';
  if (code.startsWith('ERR_SSL_')) return 'protocol';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'aborted';
  return 'other';
}

/** prom-client throws on a second registration of one name, and several listeners share a registry. */
export function handshakeFailureCounter(registry: Registry): Counter<'reason'> {
  const existing = registry.getSingleMetric(TLS_HANDSHAKE_FAILURES_METRIC);
  if (existing) return existing as Counter<'reason'>;
  return new Counter({
    name: TLS_HANDSHAKE_FAILURES_METRIC,
    help: 'TLS handshakes refused or broken, by reason',
    labelNames: ['reason'],
    registers: [registry],
  });
}

export interface HandshakeFailureReporting {
  readonly logger: Logger;
  readonly registry?: Registry;
  /** Names the listener in log lines, e.g. `gateway` or `operations`. */
  readonly listener?: string;
}

function peerSubject(socket: TLSSocket | undefined): string | undefined {
  try {
    const cert = socket?.getPeerX509Certificate?.();
    return cert ? cert.subject.replace(/\n/g, ', ') : undefined;
  } catch {
    return undefined;
  }
}

/** Reports `server`'s refused handshakes; returns a function that stops reporting. */
export function reportTlsHandshakeFailures(server: TlsServer, reporting: HandshakeFailureReporting): () => void {
  const counter = reporting.registry ? handshakeFailureCounter(reporting.registry) : undefined;
  // A client refused after Node's certificate check has its socket destroyed before the event, and a
  // destroyed socket no longer knows its peer: note the address when the TCP connection arrives.
  const remotes = new WeakMap<Socket, string>();
  const onConnection = (raw: Socket) => {
    if (raw.remoteAddress) remotes.set(raw, `${raw.remoteAddress}:${raw.remotePort ?? ''}`);
  };
  const onError = (error: NodeJS.ErrnoException, socket: TLSSocket | undefined) => {
    const reason = classifyHandshakeFailure(error, socket);
    counter?.inc({ reason });
    // `_parent` is the TCP socket a server-side TLSSocket wraps.
    const raw = (socket as unknown as { _parent?: Socket } | undefined)?._parent;
    const remote =
      (socket?.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort ?? ''}` : undefined) ??
      (raw ? remotes.get(raw) : undefined) ??
      'unknown';
    const peer = peerSubject(socket);
    const fields = {
      reason,
      remote,
      ...(reporting.listener ? { listener: reporting.listener } : {}),
      detail: (socket?.authorizationError as unknown as string | null) || error.code || error.message,
      ...(peer ? { peer } : {}),
    };
    // A peer hanging up mid-handshake (port scans, TCP probes) is routine; a refusal is not.
    if (reason === 'aborted') reporting.logger.debug(fields, 'TLS handshake aborted by peer');
    else reporting.logger.warn(fields, `TLS handshake refused: ${reason} from ${remote}`);
  };
  server.on('connection', onConnection);
  server.on('tlsClientError', onError);
  return () => {
    server.off('connection', onConnection);
    server.off('tlsClientError', onError);
  };
}
