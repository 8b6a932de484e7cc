/**
 * TLS and mutual TLS for every Loom listener and client (Node only: node:tls, node:https, node:fs).
 * Not part of ./portable.ts.
 */
export {
  CERTIFICATE_EXPIRY_METRIC,
  type CertificateDescription,
  describeCertificate,
  registerCertificateExpiryMetrics,
  type ScannedCertificate,
  type ScanOptions,
  scanCertificates,
  type WatchedCertificate,
} from './expiry.js';
export {
  classifyHandshakeFailure,
  type HandshakeFailureReporting,
  reportTlsHandshakeFailures,
  TLS_HANDSHAKE_FAILURES_METRIC,
  type TlsHandshakeFailureReason,
} from './handshake-failures.js';
export {
  createHttpsClient,
  type HttpsClient,
  type HttpsClientOptions,
  type HttpsRequest,
  type HttpsResponse,
  type HttpsStreamResponse,
  type PeerCertificateInfo,
} from './https-client.js';
export { createEphemeralTlsCa, type EphemeralTlsCa, type EphemeralTlsPair } from './ephemeral-ca.js';
export { type ListenerTlsConfig, parseListenerTlsConfig, TLS_CONFIG_INVALID } from './listener-config.js';
export {
  type CheckedTlsPair,
  checkTlsPair,
  loadTlsMaterial,
  MIN_TLS_VERSION,
  readCaFiles,
  secureContextOptions,
  type TlsClientMaterial,
  tlsClientOptions,
  TlsErrorCode,
  type TlsMaterial,
  type TlsServerSettings,
  tlsServerOptions,
  tlsTrustOf,
} from './material.js';
export {
  createReloadableTls,
  type ReloadableTls,
  type ReloadableTlsOptions,
  reloadTlsOnSignal,
  type ServedCertificate,
  TLS_RELOADS_METRIC,
  type TlsReloadResult,
} from './reloadable.js';
