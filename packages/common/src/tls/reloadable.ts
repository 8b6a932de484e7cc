/**
 * A TLS listener's certificate that can be renewed without a restart. The files are watched
 * (and `reload()` is there for SIGHUP); a new pair that parses and matches replaces the secure
 * context of every attached server with `server.setSecureContext()`, which affects new handshakes
 * only: open connections keep the context they were made with, and the listening socket is never
 * closed. A broken replacement is refused with a log line and the current pair keeps serving.
 */
import { type FSWatcher, watch } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { ServerOptions as HttpsServerOptions } from 'node:https';
import { basename, dirname, resolve } from 'node:path';
import type { SecureContextOptions, Server as TlsServer } from 'node:tls';
import { Counter, type Registry } from 'prom-client';
import { isLoomError } from '../errors.js';
import type { Logger } from '../logging.js';
import { registerCertificateExpiryMetrics } from './expiry.js';
import { reportTlsHandshakeFailures } from './handshake-failures.js';
import {
  type CheckedTlsPair,
  checkTlsPair,
  loadTlsMaterial,
  secureContextOptions,
  type TlsMaterial,
  tlsServerOptions,
} from './material.js';

export const TLS_RELOADS_METRIC = 'loom_tls_reloads_total';

export interface ReloadableTlsOptions {
  readonly certFile: string;
  readonly keyFile: string;
  /** Trusted TLS roots/intermediates: files, or directories of `*.pem` (e.g. an MSP's `tlscacerts/`). */
  readonly caFiles?: readonly string[];
  readonly clientAuthRequired?: boolean;
  readonly logger: Logger;
  /** Handshake failures, reloads and the served certificate's expiry are reported here. */
  readonly registry?: Registry;
  /** Names the listener in logs and the expiry gauge (`tls-<name>`). Default `server`. */
  readonly name?: string;
  /** Watch the files for changes. Default true. */
  readonly watch?: boolean;
  /** Quiet time after the last file event before reloading (a renewal writes several files). Default 200 ms. */
  readonly debounceMs?: number;
  /** Refuse a replacement that has already expired. Default true. */
  readonly refuseExpired?: boolean;
  /**
   * More trusted roots, read at every (re)load: the TLS roots of the channels a node serves, which
   * change with channel joins and config updates. Call `reload()` after they change.
   */
  readonly trustedRoots?: () => readonly (string | Buffer)[];
  /** How often `trustedRoots()` is compared with the loaded roots (a change reloads). Default 5 s. */
  readonly trustCheckIntervalMs?: number;
  /** Log a warning while the served certificate has fewer days left than this. Default 30. */
  readonly expiryWarningDays?: number;
  /** How often the expiry warning is re-checked. Default 1 h. */
  readonly expiryCheckIntervalMs?: number;
  readonly clock?: () => number;
}

export type TlsReloadResult =
  | { readonly status: 'reloaded'; readonly serial: string; readonly previousSerial: string }
  | { readonly status: 'unchanged'; readonly serial: string }
  | { readonly status: 'rejected'; readonly reason: string; readonly message: string; readonly serial: string };

export interface ServedCertificate {
  /** Lowercase hex without leading zeros. */
  readonly serial: string;
  readonly subject: string;
  readonly notAfter: Date;
  readonly certPem: string;
}

export interface ReloadableTls {
  /** Options to create the listener with: `https.createServer(opts)` or `Fastify({ https: opts })`. */
  serverOptions(): HttpsServerOptions & SecureContextOptions;
  /**
   * Swap `server`'s context on every reload from now on, and report its refused handshakes. With
   * fastify pass `app.server`. Returns a function that detaches it.
   */
  attach(server: TlsServer): () => void;
  /** Re-reads the files now (call it on SIGHUP). Never throws: a bad pair is `rejected`. */
  reload(): Promise<TlsReloadResult>;
  /** The certificate new connections get. */
  current(): ServedCertificate;
  /** The served pair, for a node that presents the same certificate as a TLS client (mutual TLS). */
  currentPair(): { readonly cert: string | Buffer; readonly key: string | Buffer };
  /** Stops watching and detaches every server; the servers keep their last context. */
  close(): void;
}

interface Loaded {
  readonly material: TlsMaterial;
  readonly checked: CheckedTlsPair;
  readonly fingerprint: string;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

function fingerprintOf(m: TlsMaterial): string {
  const parts = [m.certPem, m.keyPem, ...m.caPems].map((p) => (typeof p === 'string' ? p : p.toString('latin1')));
  return parts.join('\u0000');
}

function served(l: Loaded): ServedCertificate {
  const c = l.checked.certificate;
  return {
    serial: l.checked.serial,
    subject: c.subject.split('\n').filter(Boolean).join(', '),
    notAfter: l.checked.notAfter,
    certPem: c.toString(),
  };
}

function reloadCounter(registry: Registry): Counter<'result'> {
  const existing = registry.getSingleMetric(TLS_RELOADS_METRIC);
  if (existing) return existing as Counter<'result'>;
  return new Counter({
    name: TLS_RELOADS_METRIC,
    help: 'TLS certificate reload attempts, by result (reloaded, rejected)',
    labelNames: ['result'],
    registers: [registry],
  });
}

/**
 * Loads the pair (throwing `TLS_MATERIAL_INVALID` if it is unusable: a listener must not start
 * without one) and returns its reloadable handle.
 */
export async function createReloadableTls(options: ReloadableTlsOptions): Promise<ReloadableTls> {
  const { logger } = options;
  const name = options.name ?? 'server';
  const clock = options.clock ?? Date.now;
  const files = {
    certFile: resolve(options.certFile),
    keyFile: resolve(options.keyFile),
    caFiles: (options.caFiles ?? []).map((f) => resolve(f)),
  };
  const clientAuthRequired = options.clientAuthRequired ?? false;

  const load = async (): Promise<Loaded> => {
    const fromFiles = await loadTlsMaterial(files);
    const extra = options.trustedRoots?.() ?? [];
    const material: TlsMaterial =
      extra.length === 0 ? fromFiles : { ...fromFiles, caPems: [...fromFiles.caPems, ...extra] };
    // tlsServerOptions refuses mutual TLS with no roots; checkTlsPair refuses a broken pair.
    tlsServerOptions(material, { clientAuthRequired });
    return { material, checked: checkTlsPair(material), fingerprint: fingerprintOf(material) };
  };

  let loaded = await load();
  const warnDays = options.expiryWarningDays ?? 30;
  const checkExpiry = () => {
    const c = loaded.checked;
    const left = c.notAfter.getTime() - clock();
    const fields = { listener: name, serial: c.serial, notAfter: c.notAfter.toISOString(), certFile: files.certFile };
    if (left <= 0) {
      logger.error(fields, 'TLS certificate has expired: every client will refuse this listener until it is renewed');
    } else if (left < warnDays * 86_400_000) {
      logger.warn(
        { ...fields, daysLeft: Math.floor(left / 86_400_000) },
        `TLS certificate expires in less than ${warnDays} days: renew it (loom certs renew); it is reloaded without a restart`,
      );
    }
  };
  checkExpiry();
  const expiryTimer = setInterval(checkExpiry, options.expiryCheckIntervalMs ?? 3_600_000);
  expiryTimer.unref();

  const servers = new Map<TlsServer, () => void>();
  const counter = options.registry ? reloadCounter(options.registry) : undefined;
  const unregisterExpiry = options.registry
    ? registerCertificateExpiryMetrics(options.registry, () => [
        { name: `tls-${name}`, certPem: served(loaded).certPem },
      ])
    : () => {};

  let chain: Promise<unknown> = Promise.resolve();
  const reloadNow = async (): Promise<TlsReloadResult> => {
    const previous = loaded;
    let next: Loaded;
    try {
      next = await load();
      if (next.fingerprint === previous.fingerprint) return { status: 'unchanged', serial: previous.checked.serial };
      if ((options.refuseExpired ?? true) && next.checked.notAfter.getTime() <= clock()) {
        throw Object.assign(
          new Error(`certificate ${next.checked.serial} expired at ${next.checked.notAfter.toISOString()}`),
          {
            reason: 'expired',
          },
        );
      }
      const context = secureContextOptions(next.material);
      for (const server of servers.keys()) server.setSecureContext(context);
    } catch (e) {
      const reason = isLoomError(e)
        ? String(e.details.reason ?? e.code)
        : String((e as { reason?: unknown }).reason ?? 'invalid');
      const message = (e as Error).message;
      counter?.inc({ result: 'rejected' });
      logger.error(
        { listener: name, reason, certFile: files.certFile, keyFile: files.keyFile, serial: previous.checked.serial },
        `TLS certificate reload rejected (${message}); still serving ${previous.checked.serial}`,
      );
      return { status: 'rejected', reason, message, serial: previous.checked.serial };
    }
    loaded = next;
    counter?.inc({ result: 'reloaded' });
    checkExpiry();
    logger.info(
      {
        listener: name,
        serial: next.checked.serial,
        previousSerial: previous.checked.serial,
        notAfter: next.checked.notAfter.toISOString(),
      },
      'TLS certificate reloaded',
    );
    return { status: 'reloaded', serial: next.checked.serial, previousSerial: previous.checked.serial };
  };
  const reload = (): Promise<TlsReloadResult> => {
    // One reload at a time, in order: a SIGHUP during a watcher reload waits for it.
    const p = chain.then(reloadNow, reloadNow);
    chain = p;
    return p;
  };

  // Watch the directories, not the files: renewals replace files by rename (and Kubernetes swaps a
  // symlinked directory), which a watch on the old inode would never see.
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  if (options.watch ?? true) {
    const byDir = new Map<string, Set<string>>();
    const add = (d: string, name: string) => byDir.set(d, (byDir.get(d) ?? new Set<string>()).add(name));
    for (const f of [files.certFile, files.keyFile, ...files.caFiles]) add(dirname(f), basename(f));
    // A CA entry may itself be a directory of roots (an MSP's tlscacerts/): any change in it counts.
    for (const d of files.caFiles) if (await isDirectory(d)) add(d, '*');
    const schedule = () => {
      if (closed) return;
      clearTimeout(timer);
      timer = setTimeout(() => void reload(), options.debounceMs ?? 200);
      timer.unref();
    };
    for (const [dir, names] of byDir) {
      try {
        const w = watch(dir, { persistent: false }, (_event, file) => {
          if (names.has('*') || file === null || names.has(String(file)) || String(file).startsWith('..')) schedule();
        });
        w.on('error', (e) => logger.warn({ listener: name, dir, err: e }, 'TLS file watch failed; reload on SIGHUP'));
        watchers.push(w);
      } catch (e) {
        logger.warn({ listener: name, dir, err: e }, 'cannot watch TLS files; reload on SIGHUP');
      }
    }
  }

  // Channel joins and config updates change whom a listener trusts: pick that up without a signal.
  const trustKey = () =>
    (options.trustedRoots?.() ?? []).map((p) => (typeof p === 'string' ? p : p.toString())).join('\n');
  let lastTrust = trustKey();
  const trustTimer = options.trustedRoots
    ? setInterval(() => {
        const k = trustKey();
        if (k !== lastTrust) {
          lastTrust = k;
          void reload();
        }
      }, options.trustCheckIntervalMs ?? 5000)
    : undefined;
  trustTimer?.unref();

  return {
    serverOptions: () => tlsServerOptions(loaded.material, { clientAuthRequired }),
    attach(server) {
      if (!servers.has(server)) {
        // The server may have been made from an older serverOptions(); bring it up to date.
        server.setSecureContext(secureContextOptions(loaded.material));
        const stopReporting = reportTlsHandshakeFailures(server, {
          logger,
          listener: name,
          ...(options.registry ? { registry: options.registry } : {}),
        });
        servers.set(server, stopReporting);
      }
      return () => {
        servers.get(server)?.();
        servers.delete(server);
      };
    },
    reload,
    current: () => served(loaded),
    currentPair: () => ({ cert: loaded.material.certPem, key: loaded.material.keyPem }),
    close() {
      closed = true;
      clearInterval(expiryTimer);
      clearInterval(trustTimer);
      clearTimeout(timer);
      for (const w of watchers.splice(0)) w.close();
      for (const stop of servers.values()) stop();
      servers.clear();
      unregisterExpiry();
    },
  };
}

/**
 * Reloads every pair on `signal` (SIGHUP by default, as operators expect of a daemon). Installing
 * the handler also stops that signal from ending the process. Returns a function that uninstalls it.
 */
export function reloadTlsOnSignal(
  targets: ReadonlyArray<Pick<ReloadableTls, 'reload'>>,
  signal: NodeJS.Signals = 'SIGHUP',
): () => void {
  const onSignal = () => {
    for (const t of targets) void t.reload();
  };
  process.on(signal, onSignal);
  return () => {
    process.off(signal, onSignal);
  };
}
