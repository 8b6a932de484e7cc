/**
 * Certificate expiry, before it bites: a Prometheus gauge of seconds left for every certificate a
 * node holds, and a scan of a network data directory for the `loom certs check` command.
 */
import { X509Certificate } from 'node:crypto';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { Gauge, type Registry } from 'prom-client';
import { normalizeHexSerial } from './material.js';

export const CERTIFICATE_EXPIRY_METRIC = 'loom_certificate_expiry_seconds';

const DAY_MS = 86_400_000;

/** A certificate a node wants watched, under a name saying what it is for (`tls-server`, `enrollment`, `tls-ca`). */
export interface WatchedCertificate {
  readonly name: string;
  readonly certPem: string | Buffer;
}

export interface CertificateDescription {
  /** One line, `C=US, O=Org1MSP, CN=peer0`. */
  readonly subject: string;
  readonly issuer: string;
  /** Lowercase hex without leading zeros. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCa: boolean;
}

const oneLine = (dn: string) => dn.split('\n').filter(Boolean).join(', ');

export function describeCertificate(cert: X509Certificate | string | Buffer): CertificateDescription {
  const c = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  return {
    subject: oneLine(c.subject),
    issuer: oneLine(c.issuer),
    serial: normalizeHexSerial(c.serialNumber),
    notBefore: new Date(c.validFrom),
    notAfter: new Date(c.validTo),
    isCa: c.ca,
  };
}

type Provider = () => readonly WatchedCertificate[];

interface ExpiryGaugeState {
  readonly providers: Set<Provider>;
  clock: () => number;
}

// One gauge per registry, fed by every provider registered on it (a node registers its TLS pair,
// its enrollment certificate, and each listener's reloadable pair).
const gauges = new WeakMap<Registry, ExpiryGaugeState>();

// Parsing on every scrape would be waste: certificates change only on renewal.
const parsed = new Map<string, CertificateDescription>();
function describeCached(pem: string | Buffer): CertificateDescription | undefined {
  const key = typeof pem === 'string' ? pem : pem.toString('utf8');
  let d = parsed.get(key);
  if (!d) {
    try {
      d = describeCertificate(key);
    } catch {
      return undefined;
    }
    if (parsed.size > 1000) parsed.clear();
    parsed.set(key, d);
  }
  return d;
}

/**
 * Registers `loom_certificate_expiry_seconds{name, subject, serial}` (seconds until notAfter,
 * negative once expired) in `registry`, computed at each scrape from `certificates()`. Several
 * providers may share one registry. Returns a function that unregisters this provider.
 */
export function registerCertificateExpiryMetrics(
  registry: Registry,
  certificates: Provider,
  options: { clock?: () => number } = {},
): () => void {
  let state = gauges.get(registry);
  if (!state) {
    const s: ExpiryGaugeState = { providers: new Set(), clock: options.clock ?? Date.now };
    state = s;
    gauges.set(registry, s);
    new Gauge({
      name: CERTIFICATE_EXPIRY_METRIC,
      help: 'Seconds until the certificate expires (negative once expired)',
      labelNames: ['name', 'subject', 'serial'],
      registers: [registry],
      collect() {
        this.reset();
        const now = s.clock();
        for (const provider of s.providers) {
          for (const c of provider()) {
            const d = describeCached(c.certPem);
            if (!d) continue;
            this.set({ name: c.name, subject: d.subject, serial: d.serial }, (d.notAfter.getTime() - now) / 1000);
          }
        }
      },
    });
  } else if (options.clock) {
    state.clock = options.clock;
  }
  const providers = state.providers;
  providers.add(certificates);
  return () => {
    providers.delete(certificates);
  };
}

export interface ScannedCertificate extends CertificateDescription {
  readonly path: string;
  /** Position of the certificate in its file (chains hold several). */
  readonly index: number;
  /** Whole days until notAfter, rounded down; negative once expired. */
  readonly daysLeft: number;
}

export interface ScanOptions {
  readonly now?: Date;
  /** Stops walking after this many files (a data directory is not a file system). Default 20,000. */
  readonly maxFiles?: number;
  readonly maxDepth?: number;
  /** Told about files that look like PEM but cannot be read. */
  readonly onSkip?: (path: string, reason: string) => void;
}

const CERT_EXTENSIONS = new Set(['.pem', '.crt', '.cert']);
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/**
 * Every X.509 certificate under `dir` in `*.pem`/`*.crt` files, soonest expiry first. Keys, CSRs and
 * CRLs are skipped by their PEM label; symbolic links are not followed.
 */
export async function scanCertificates(dir: string, options: ScanOptions = {}): Promise<ScannedCertificate[]> {
  const now = (options.now ?? new Date()).getTime();
  const maxFiles = options.maxFiles ?? 20_000;
  const maxDepth = options.maxDepth ?? 16;
  const out: ScannedCertificate[] = [];
  let files = 0;

  const walk = async (d: string, depth: number): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (e) {
      if (depth === 0) throw e;
      options.onSkip?.(d, (e as Error).message);
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (files >= maxFiles) return;
      const path = join(d, entry.name);
      if (entry.isDirectory()) {
        if (depth < maxDepth && entry.name !== 'node_modules') await walk(path, depth + 1);
        continue;
      }
      if (!entry.isFile() || !CERT_EXTENSIONS.has(extname(entry.name).toLowerCase())) continue;
      files++;
      let text: string;
      try {
        if ((await lstat(path)).size > 1_000_000) {
          options.onSkip?.(path, 'larger than 1 MB');
          continue;
        }
        text = await readFile(path, 'utf8');
      } catch (e) {
        options.onSkip?.(path, (e as Error).message);
        continue;
      }
      let index = 0;
      for (const m of text.matchAll(PEM_BLOCK)) {
        if (m[1] !== 'CERTIFICATE') continue;
        try {
          const desc = describeCertificate(m[0]);
          out.push({
            ...desc,
            path,
            index,
            daysLeft: Math.floor((desc.notAfter.getTime() - now) / DAY_MS),
          });
        } catch (e) {
          options.onSkip?.(path, `certificate ${index}: ${(e as Error).message}`);
        }
        index++;
      }
    }
  };

  await walk(dir, 0);
  return out.sort((a, b) => a.notAfter.getTime() - b.notAfter.getTime() || (a.path < b.path ? -1 : 1));
}
