/**
 * `loom certs …`: certificate expiry, before it stops a network.
 *
 *   loom certs check [--data .loom] [--warn-days 30] [--within <days>] [--json] [--fail-on-warn]
 *   loom certs renew --node peer0.org1.example.com [--tls] [--config network-config.yaml]
 *   loom certs renew --url https://127.0.0.1:7054 --tls-cert tlsca.pem --msp-dir <node>/msp [--tls-dir <node>/tls] [--hosts a,b]
 *
 * `check --within <days>` lists only the certificates expiring within that window (or expired) and
 * exits 1 when there is any: the monitoring form.
 *
 * `renew` reenrolls through the org's CA, authenticated by the identity's current (still valid)
 * enrollment certificate, and writes the new pair in place so a running node's file watcher (or a
 * SIGHUP) picks it up without a restart.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CaClient, type CaIdentity } from '@loom/ca';
import { LoomError, type NetworkConfig } from '@loom/common';
import { loadMspFromDir } from '@loom/common/msp/msp-dir';
import { type ScannedCertificate, scanCertificates } from '@loom/common/tls/index';
import type { Command } from 'commander';
import { caUrl } from '../network/enroll.js';
import { allOrgs, layout } from '../network/layout.js';
import { DEFAULT_CONFIG, loadConfig } from './network.js';

function usage(message: string): LoomError {
  return new LoomError('CLI_USAGE', message, { httpStatus: 400 });
}

// ---- check ----

export interface CertsCheckOptions {
  readonly data: string;
  readonly warnDays: number;
  /** List only certificates expiring within this many days, and exit 1 when there is any. */
  readonly withinDays?: number;
  readonly json?: boolean;
  readonly failOnWarn?: boolean;
  readonly now?: Date;
}

export interface CertsCheckReport {
  readonly certificates: readonly ScannedCertificate[];
  readonly warnings: readonly ScannedCertificate[];
  readonly skipped: ReadonlyArray<{ readonly path: string; readonly reason: string }>;
  /** What the command exits with: 1 only with `failOnWarn` and a warning. */
  readonly exitCode: number;
  /** The text (or JSON) the command prints. */
  readonly output: string;
}

function when(c: ScannedCertificate): string {
  if (c.daysLeft < 0) return `expired ${-c.daysLeft} day${c.daysLeft === -1 ? '' : 's'} ago`;
  if (c.daysLeft === 0) return 'expires within a day';
  return `expires in ${c.daysLeft} day${c.daysLeft === 1 ? '' : 's'}`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '))
    .join('\n');
}

/** Scans `data` and renders the report; printing and exiting is the caller's. */
export async function checkCertificates(options: CertsCheckOptions): Promise<CertsCheckReport> {
  if (!Number.isFinite(options.warnDays) || options.warnDays < 0)
    throw usage('--warn-days must be a number of days ≥ 0');
  const within = options.withinDays;
  if (within !== undefined && (!Number.isFinite(within) || within < 0))
    throw usage('--within must be a number of days ≥ 0');
  const skipped: Array<{ path: string; reason: string }> = [];
  let certificates: ScannedCertificate[];
  try {
    certificates = await scanCertificates(options.data, {
      ...(options.now ? { now: options.now } : {}),
      onSkip: (path, reason) => skipped.push({ path, reason }),
    });
  } catch (e) {
    throw usage(`cannot read data directory ${options.data}: ${(e as Error).message}`);
  }
  if (within !== undefined) certificates = certificates.filter((c) => c.daysLeft < within);
  const warnDays = within ?? options.warnDays;
  const warnings = certificates.filter((c) => c.daysLeft < warnDays);
  const exitCode = (options.failOnWarn || within !== undefined) && warnings.length > 0 ? 1 : 0;

  let output: string;
  if (options.json) {
    const view = (c: ScannedCertificate) => ({
      path: c.path,
      index: c.index,
      subject: c.subject,
      issuer: c.issuer,
      serial: c.serial,
      notAfter: c.notAfter.toISOString(),
      daysLeft: c.daysLeft,
      isCa: c.isCa,
      warn: c.daysLeft < warnDays,
    });
    output = JSON.stringify({ warnDays, certificates: certificates.map(view), skipped }, null, 2);
  } else if (certificates.length === 0) {
    output =
      within === undefined
        ? `no certificates under ${options.data}`
        : `no certificate under ${options.data} expires within ${within} days`;
  } else {
    const rows = [
      ['DAYS', 'NOT AFTER', 'CA', 'SUBJECT', 'PATH'],
      ...certificates.map((c) => [
        String(c.daysLeft),
        c.notAfter.toISOString().slice(0, 19).replace('T', ' '),
        c.isCa ? 'yes' : 'no',
        c.subject,
        c.index > 0 ? `${c.path}#${c.index}` : c.path,
      ]),
    ];
    const lines = [table(rows)];
    for (const c of warnings)
      lines.push(`WARN ${c.path}: ${c.subject} (serial ${c.serial}) ${when(c)}, ${c.notAfter.toISOString()}`);
    for (const s of skipped) lines.push(`SKIP ${s.path}: ${s.reason}`);
    lines.push(
      `${certificates.length} certificate${certificates.length === 1 ? '' : 's'}, ${warnings.length} expiring within ${warnDays} days or expired`,
    );
    output = lines.join('\n');
  }
  return { certificates, warnings, skipped, exitCode, output };
}

// ---- renew ----

export interface RenewCertificateOptions {
  /** The org's CA, `https://host:port`. */
  readonly caUrl: string;
  /** PEM of the CA listener's TLS root (required for https). */
  readonly tlsCa?: string;
  /** MSP folder of the identity: its enrollment certificate and key authenticate the renewal. */
  readonly mspDir: string;
  /** Renew the TLS pair in this Fabric `tls/` folder (`server.crt`, `server.key`) instead of the enrollment certificate. */
  readonly tlsDir?: string;
  /** Subject alternative names of the new TLS certificate; default: those of the current one. */
  readonly hosts?: readonly string[];
  /** A client to use instead of one made from `caUrl`/`tlsCa`. */
  readonly client?: CaClient;
}

export interface RenewedCertificate {
  readonly kind: 'enrollment' | 'tls';
  readonly certFile: string;
  readonly keyFile: string;
  readonly serial: string;
  readonly previousSerial: string;
  readonly notAfter: Date;
}

const serialOf = (c: X509Certificate) => c.serialNumber.toLowerCase().replace(/^0+/, '') || '0';

/** The CA's answer, checked before anything on disk is replaced. */
function checkedPair(certPem: string, keyPem: string): X509Certificate {
  const cert = new X509Certificate(certPem);
  if (!cert.checkPrivateKey(createPrivateKey(keyPem))) {
    throw new LoomError('CERT_RENEWAL_FAILED', 'the CA returned a certificate that does not match the new key', {
      httpStatus: 502,
    });
  }
  return cert;
}

/** SANs as the CA's `hosts` expects them, from a certificate's `subjectAltName` string. */
function hostsOf(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(', ')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:') || s.startsWith('IP Address:'))
    .map((s) => s.slice(s.indexOf(':') + 1));
}

function cnOf(cert: X509Certificate): string | undefined {
  return cert.subject
    .split('\n')
    .find((l) => l.startsWith('CN='))
    ?.slice(3);
}

/** Replaces `file` by rename, so a reader (a node's TLS watcher) sees the old bytes or the new ones. */
async function replaceFile(file: string, text: string, mode?: number): Promise<void> {
  const tmp = `${file}.${process.pid}.new`;
  await writeFile(tmp, text, mode === undefined ? {} : { mode });
  await rename(tmp, file);
}

/**
 * Reenrolls the identity of `mspDir` with its CA and writes the new certificate and key in place:
 * the TLS pair of `tlsDir` (same CN and SANs unless `hosts` says otherwise), or the enrollment
 * certificate in `signcerts/` with a new key in `keystore/`. The old pair is replaced only after the
 * CA has answered, and in an order that leaves a loadable folder at every step.
 */
export async function renewCertificate(options: RenewCertificateOptions): Promise<RenewedCertificate> {
  const loaded = await loadMspFromDir(options.mspDir, 'renew');
  if (!loaded.signingIdentity) throw usage(`${options.mspDir} holds no enrolled identity (signcerts/ and keystore/)`);
  const identity: CaIdentity = { certPem: loaded.signingIdentity.certPem, keyPem: loaded.signingIdentity.keyPem };
  const enrollmentCert = new X509Certificate(identity.certPem);
  if (new Date(enrollmentCert.validTo).getTime() <= Date.now()) {
    throw usage(
      `the enrollment certificate in ${options.mspDir} expired at ${new Date(enrollmentCert.validTo).toISOString()}; ` +
        'it can no longer authenticate a renewal: enroll again with the enrollment secret',
    );
  }
  if (options.caUrl.startsWith('https:') && !options.tlsCa && !options.client) {
    throw usage('the CA TLS root (--tls-cert) is required for an https CA URL');
  }
  const client =
    options.client ?? new CaClient({ url: options.caUrl, ...(options.tlsCa ? { tlsRootPem: options.tlsCa } : {}) });

  if (options.tlsDir) {
    const certFile = join(options.tlsDir, 'server.crt');
    const keyFile = join(options.tlsDir, 'server.key');
    const current = new X509Certificate(await readFile(certFile));
    const hosts = options.hosts ? [...options.hosts] : hostsOf(current);
    const cn = cnOf(current) ?? cnOf(enrollmentCert);
    const renewed = await client.reenroll(identity, {
      profile: 'tls',
      csrOptions: { ...(cn ? { cn } : {}), ...(hosts.length > 0 ? { hosts } : {}) },
    });
    const next = checkedPair(renewed.certPem, renewed.keyPem);
    // Key first, then certificate: a watcher that wakes between the two sees a mismatched pair,
    // refuses it and keeps serving, then reloads on the certificate's own event.
    await replaceFile(keyFile, renewed.keyPem, 0o600);
    await replaceFile(certFile, renewed.certPem);
    return {
      kind: 'tls',
      certFile,
      keyFile,
      serial: serialOf(next),
      previousSerial: serialOf(current),
      notAfter: new Date(next.validTo),
    };
  }

  const renewed = await client.reenroll(identity);
  const signDir = join(options.mspDir, 'signcerts');
  const keyDir = join(options.mspDir, 'keystore');
  const [certName] = (await readdir(signDir)).sort();
  const certFile = join(signDir, certName ?? 'cert.pem');
  // Find the old key file by content, as loadMspFromDir matched it.
  let oldKeyFile: string | undefined;
  for (const name of await readdir(keyDir)) {
    const text = await readFile(join(keyDir, name), 'utf8').catch(() => '');
    if (text === identity.keyPem) oldKeyFile = join(keyDir, name);
  }
  const next = checkedPair(renewed.certPem, renewed.keyPem);
  const keyFile = join(keyDir, `${serialOf(next)}_sk`);
  // New key beside the old, then the certificate, then the old key goes: loadMspFromDir picks the
  // key matching signcerts/, so the folder loads whatever step a crash stops at.
  await replaceFile(keyFile, renewed.keyPem, 0o600);
  await replaceFile(certFile, renewed.certPem);
  if (oldKeyFile && oldKeyFile !== keyFile) await unlink(oldKeyFile).catch(() => {});
  return {
    kind: 'enrollment',
    certFile,
    keyFile,
    serial: serialOf(next),
    previousSerial: serialOf(enrollmentCert),
    notAfter: new Date(next.validTo),
  };
}

/**
 * Where a node (peer or orderer, by fqdn or name) of a launched network keeps its identity, and
 * its org's CA: what `renew --node` needs.
 */
export function renewalTargetOf(
  net: NetworkConfig,
  node: string,
): { caUrl: string; tlsCaFile: string | undefined; mspDir: string; tlsDir: string } {
  for (const org of allOrgs(net)) {
    const members =
      'peers' in org
        ? org.peers.map((p) => ({ ...p, kind: 'peers' as const }))
        : org.orderers.map((o) => ({ ...o, kind: 'orderers' as const }));
    const m = members.find((x) => x.fqdn === node || x.name === node);
    if (!m) continue;
    const dir = layout.nodeDir(net, org, m.kind, m.fqdn);
    return {
      caUrl: caUrl(net, org),
      tlsCaFile: net.tls.enabled ? join(layout.caDir(net, org), 'data', 'tlsca-cert.pem') : undefined,
      mspDir: join(dir, 'msp'),
      tlsDir: join(dir, 'tls'),
    };
  }
  const known = allOrgs(net).flatMap((o) => ('peers' in o ? o.peers : o.orderers).map((n) => n.fqdn));
  throw usage(`no node ${node} in ${net.source}; known: ${known.join(', ')}`);
}

// ---- commands ----

function wantsJson(cmd: Command): boolean {
  return Boolean((cmd.optsWithGlobals() as { json?: boolean }).json);
}

export function registerCertsCommands(program: Command): Command {
  const certs = program.command('certs').description('certificate expiry and renewal');

  certs
    .command('check')
    .description('list every certificate under a network data directory, soonest expiry first')
    .option('--data <dir>', 'network data directory', '.loom')
    .option('--warn-days <days>', 'warn about certificates expiring within this many days', '30')
    .option('--fail-on-warn', 'exit with 1 when any certificate warns')
    .option('--within <days>', 'list only certificates expiring within this many days; exit 1 if there is any')
    .option('--json', 'machine-readable output')
    .action(async (opts: { data: string; warnDays: string; failOnWarn?: boolean; within?: string }, cmd: Command) => {
      const report = await checkCertificates({
        data: opts.data,
        warnDays: Number(opts.warnDays),
        ...(opts.within !== undefined ? { withinDays: Number(opts.within) } : {}),
        json: wantsJson(cmd),
        failOnWarn: Boolean(opts.failOnWarn),
      });
      process.stdout.write(`${report.output}\n`);
      if (report.exitCode !== 0) process.exitCode = report.exitCode;
    });

  certs
    .command('renew')
    .description('reenroll a certificate (the enrollment one, or the TLS pair with --tls-dir) and write it in place')
    .option('--node <fqdn>', 'a node of the network-config (peer or orderer): its CA, MSP and tls/ folders')
    .option('--tls', "with --node: renew the node's TLS pair (tls/server.crt) instead of its enrollment certificate")
    .option('--config <file>', 'network-config file (with --node)', DEFAULT_CONFIG)
    .option('--url <url>', 'CA URL, e.g. https://127.0.0.1:7054 (without --node)')
    .option('--tls-cert <file>', "PEM of the CA's TLS root (required for https)")
    .option('--msp-dir <dir>', 'MSP folder of the identity to renew (it authenticates the request)')
    .option('--tls-dir <dir>', 'renew the TLS pair in this folder (server.crt, server.key) instead')
    .option('--hosts <names>', 'comma-separated SANs for the new TLS certificate (default: the current ones)')
    .option('--json', 'machine-readable output')
    .action(
      async (
        opts: {
          url?: string;
          tlsCert?: string;
          mspDir?: string;
          tlsDir?: string;
          hosts?: string;
          node?: string;
          tls?: boolean;
          config: string;
        },
        cmd: Command,
      ) => {
        if (opts.node) {
          const t = renewalTargetOf(await loadConfig({ config: opts.config }), opts.node);
          opts.url ??= t.caUrl;
          opts.tlsCert ??= t.tlsCaFile;
          opts.mspDir ??= t.mspDir;
          if (opts.tls) opts.tlsDir ??= t.tlsDir;
        }
        if (!opts.url || !opts.mspDir) throw usage('give --node <fqdn>, or --url and --msp-dir');
        const hosts = opts.hosts
          ?.split(',')
          .map((h) => h.trim())
          .filter(Boolean);
        const r = await renewCertificate({
          caUrl: opts.url,
          ...(opts.tlsCert ? { tlsCa: await readFile(opts.tlsCert, 'utf8') } : {}),
          mspDir: opts.mspDir,
          ...(opts.tlsDir ? { tlsDir: opts.tlsDir } : {}),
          ...(hosts ? { hosts } : {}),
        });
        const text =
          `renewed ${r.kind} certificate ${r.previousSerial} → ${r.serial}, valid until ${r.notAfter.toISOString()}\n` +
          `  ${r.certFile}\n  ${r.keyFile}\n` +
          (r.kind === 'tls'
            ? 'a running node picks the new pair up from its file watcher (or send it SIGHUP)'
            : 'restart the node (or reload its MSP) to sign with the new certificate');
        process.stdout.write(`${wantsJson(cmd) ? JSON.stringify(r, null, 2) : text}\n`);
      },
    );

  return certs;
}
