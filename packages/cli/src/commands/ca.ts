/**
 * `loom ca …`: run a certificate authority and talk to one, Fabric-CA-client style.
 *
 *   loom ca start --config ca.yaml
 *   loom ca enroll   --url https://127.0.0.1:7054 --tls-cert tlsca.pem --id admin --secret adminpw --msp-dir ./admin/msp
 *   loom ca register --url … --tls-cert … --msp-dir ./admin/msp --id peer0 --type peer --affiliation org1 --attrs 'app.role=auditor:ecert'
 *   loom ca reenroll --url … --tls-cert … --msp-dir ./peer0/msp
 *   loom ca revoke   --url … --tls-cert … --msp-dir ./admin/msp --id user1 [--gencrl]
 *   loom ca gencrl   --url … --tls-cert … --msp-dir ./admin/msp          # writes <msp-dir>/crls/crl.pem
 *   loom ca identity list --url … --tls-cert … --msp-dir ./admin/msp
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type AttributeRequest,
  CaClient,
  type CaIdentity,
  loadCaConfig,
  startCaServer,
  writeMspFolder,
} from '@loom/ca';
import type { Attribute, IdentityType } from '@loom/ca';
import { LoomError } from '@loom/common';
import { loadMspFromDir } from '@loom/common/msp/msp-dir';
import type { Command } from 'commander';

interface ConnectionOpts {
  url: string;
  tlsCert?: string;
  mspDir: string;
  json?: boolean;
}

function usage(message: string): LoomError {
  return new LoomError('CLI_USAGE', message, { httpStatus: 400 });
}

function withConnection(cmd: Command): Command {
  return cmd
    .requiredOption('--url <url>', 'CA URL, e.g. https://127.0.0.1:7054')
    .option('--tls-cert <file>', "PEM of the CA's TLS root (required for https)")
    .requiredOption('--msp-dir <dir>', 'MSP folder of the identity (written by enroll, read by the other commands)')
    .option('--json', 'machine-readable output');
}

async function clientFor(opts: ConnectionOpts): Promise<CaClient> {
  let tlsRootPem: string | undefined;
  if (opts.tlsCert) tlsRootPem = await readFile(opts.tlsCert, 'utf8');
  else if (opts.url.startsWith('https:')) throw usage('--tls-cert is required for an https CA URL');
  return new CaClient({ url: opts.url, ...(tlsRootPem ? { tlsRootPem } : {}) });
}

async function identityFrom(mspDir: string): Promise<CaIdentity> {
  const loaded = await loadMspFromDir(mspDir, 'cli');
  if (!loaded.signingIdentity) throw usage(`${mspDir} holds no enrolled identity (signcerts/ and keystore/)`);
  return { certPem: loaded.signingIdentity.certPem, keyPem: loaded.signingIdentity.keyPem };
}

function wantsJson(cmd: Command): boolean {
  return Boolean((cmd.optsWithGlobals() as { json?: boolean }).json);
}

function print(cmd: Command, value: unknown, text: string): void {
  process.stdout.write(wantsJson(cmd) ? `${JSON.stringify(value, null, 2)}\n` : `${text}\n`);
}

const list = (v: string | undefined) =>
  (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** Fabric CA client syntax: `name=value[:ecert],…`. */
export function parseAttrs(v: string | undefined): Attribute[] {
  return list(v).map((item) => {
    const eq = item.indexOf('=');
    if (eq <= 0) throw usage(`attribute ${JSON.stringify(item)} is not name=value[:ecert]`);
    let value = item.slice(eq + 1);
    const ecert = value.endsWith(':ecert');
    if (ecert) value = value.slice(0, -':ecert'.length);
    return { name: item.slice(0, eq), value, ecert };
  });
}

/** `name[:opt],…`: attributes to put in the certificate; `:opt` marks one as optional. */
export function parseAttrReqs(v: string | undefined): AttributeRequest[] | undefined {
  const items = list(v);
  if (items.length === 0) return undefined;
  return items.map((i) =>
    i.endsWith(':opt') ? { name: i.slice(0, -4), optional: true } : { name: i, optional: false },
  );
}

/** `O=org1,C=US` → `[{O: 'org1'}, {C: 'US'}]`. */
function parseNames(v: string | undefined): Array<Record<string, string>> {
  return list(v).map((kv) => {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw usage(`--csr-names entry ${JSON.stringify(kv)} is not KEY=value`);
    return { [kv.slice(0, eq)]: kv.slice(eq + 1) };
  });
}

export function registerCaCommands(program: Command): Command {
  const ca = program
    .command('ca')
    .description('run a certificate authority, or enroll, register and revoke through one');

  ca.command('start')
    .description('start a CA server from its config file (runs until SIGTERM/SIGINT)')
    .requiredOption('--config <file>', 'CA config YAML')
    .action(async (opts: { config: string }, cmd: Command) => {
      const config = await loadCaConfig(opts.config);
      const server = await startCaServer(config);
      print(cmd, { url: server.url, caName: config.name }, `CA ${config.name} listening at ${server.url}`);
      await new Promise<void>((resolve) => {
        const stop = () => void server.stop().finally(resolve);
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    });

  withConnection(ca.command('enroll'))
    .description('enroll with an ID and secret; writes the key and certificate as an MSP folder')
    .requiredOption('--id <id>', 'enrollment ID')
    .requiredOption('--secret <secret>', 'enrollment secret')
    .option('--profile <profile>', "'tls' for a TLS certificate from the TLS CA")
    .option('--hosts <list>', 'subject alternative names, comma separated')
    .option('--attrs <list>', 'attributes to request, name[:opt],…')
    .option('--csr-names <list>', 'subject names to propose, e.g. O=org1.example.com,C=US')
    .action(async (opts: ConnectionOpts & Record<string, string | undefined>, cmd: Command) => {
      if (opts.profile && opts.profile !== 'tls') throw usage("--profile must be 'tls' or left out");
      const client = await clientFor(opts);
      const info = await client.cainfo();
      const attrReqs = parseAttrReqs(opts.attrs);
      const hosts = list(opts.hosts);
      const e = await client.enroll({
        id: opts.id!,
        secret: opts.secret!,
        ...(opts.profile === 'tls' ? { profile: 'tls' as const } : {}),
        ...(attrReqs ? { attrReqs } : {}),
        csrOptions: { names: parseNames(opts.csrNames), ...(hosts.length ? { hosts } : {}) },
      });
      await writeMspFolder(opts.mspDir, {
        certPem: e.certPem,
        keyPem: e.keyPem,
        caCertPem: e.caChainPem,
        tlsCaCertPem: info.tlsCaChainPem,
        nodeOUs: true,
      });
      print(
        cmd,
        { id: opts.id, serial: e.serial, mspDir: opts.mspDir },
        `enrolled ${opts.id} (serial ${e.serial}) into ${opts.mspDir}`,
      );
    });

  withConnection(ca.command('register'))
    .description('register an identity, as the registrar in --msp-dir; prints its secret')
    .requiredOption('--id <id>', 'enrollment ID to register')
    .option('--type <type>', 'client, peer, orderer, admin or user', 'client')
    .option('--secret <secret>', 'secret (generated when left out)')
    .option('--affiliation <name>', 'affiliation, e.g. org1.department1', '')
    .option('--max-enrollments <n>', 'enrollments the secret allows (-1 unlimited, 0 CA default)')
    .option('--attrs <list>', 'attributes, name=value[:ecert],…')
    .action(async (opts: ConnectionOpts & Record<string, string | undefined>, cmd: Command) => {
      const client = await clientFor(opts);
      const max = opts.maxEnrollments === undefined ? undefined : Number(opts.maxEnrollments);
      if (max !== undefined && !Number.isInteger(max)) throw usage('--max-enrollments must be a whole number');
      const secret = await client.register(await identityFrom(opts.mspDir), {
        id: opts.id!,
        type: opts.type as IdentityType,
        affiliation: opts.affiliation ?? '',
        attrs: parseAttrs(opts.attrs),
        ...(opts.secret ? { secret: opts.secret } : {}),
        ...(max !== undefined ? { maxEnrollments: max } : {}),
      });
      print(cmd, { id: opts.id, secret }, `Password: ${secret}`);
    });

  withConnection(ca.command('reenroll'))
    .description('get a new key and certificate for the identity in --msp-dir, replacing them there')
    .option('--profile <profile>', "'tls' for a TLS certificate")
    .option('--attrs <list>', 'attributes to request, name[:opt],…')
    .action(async (opts: ConnectionOpts & Record<string, string | undefined>, cmd: Command) => {
      const client = await clientFor(opts);
      const attrReqs = parseAttrReqs(opts.attrs);
      const e = await client.reenroll(await identityFrom(opts.mspDir), {
        ...(opts.profile === 'tls' ? { profile: 'tls' as const } : {}),
        ...(attrReqs ? { attrReqs } : {}),
      });
      const info = await client.cainfo();
      await writeMspFolder(opts.mspDir, {
        certPem: e.certPem,
        keyPem: e.keyPem,
        caCertPem: e.caChainPem,
        tlsCaCertPem: info.tlsCaChainPem,
        nodeOUs: true,
      });
      print(cmd, { serial: e.serial, mspDir: opts.mspDir }, `reenrolled (serial ${e.serial}) into ${opts.mspDir}`);
    });

  withConnection(ca.command('revoke'))
    .description('revoke an identity (all its certificates) or one certificate by serial and AKI')
    .option('--id <id>', 'identity to revoke')
    .option('--serial <hex>', 'certificate serial')
    .option('--aki <hex>', 'authority key identifier of the certificate')
    .option('--reason <reason>', 'revocation reason', 'unspecified')
    .option('--gencrl', 'also write a fresh CRL to <msp-dir>/crls/crl.pem')
    .action(async (opts: ConnectionOpts & Record<string, string | boolean | undefined>, cmd: Command) => {
      if (!opts.id && !(opts.serial && opts.aki)) throw usage('give --id, or --serial and --aki');
      const client = await clientFor(opts);
      const r = await client.revoke(await identityFrom(opts.mspDir), {
        ...(opts.id ? { id: String(opts.id) } : {}),
        ...(opts.serial ? { serial: String(opts.serial), aki: String(opts.aki) } : {}),
        reason: String(opts.reason),
        gencrl: Boolean(opts.gencrl),
      });
      if (r.crlPem) await writeCrl(opts.mspDir, r.crlPem);
      print(cmd, r, `revoked ${r.revoked.map((c) => c.serial).join(', ') || 'nothing new'}`);
    });

  withConnection(ca.command('gencrl'))
    .description("fetch the CA's CRL into <msp-dir>/crls/crl.pem")
    .action(async (opts: ConnectionOpts, cmd: Command) => {
      const client = await clientFor(opts);
      const crlPem = await client.gencrl(await identityFrom(opts.mspDir));
      const file = await writeCrl(opts.mspDir, crlPem);
      print(cmd, { file, crl: crlPem }, `CRL written to ${file}`);
    });

  const identity = ca.command('identity').description('list, show and remove identities');
  withConnection(identity.command('list'))
    .description('identities the caller may manage')
    .action(async (opts: ConnectionOpts, cmd: Command) => {
      const client = await clientFor(opts);
      const ids = await client.identities.list(await identityFrom(opts.mspDir));
      print(
        cmd,
        ids,
        ids
          .map(
            (i) =>
              `Name: ${i.id}, Type: ${i.type}, Affiliation: ${i.affiliation || '.'}, Max Enrollments: ${i.max_enrollments}, Attributes: ${JSON.stringify(i.attrs)}`,
          )
          .join('\n'),
      );
    });
  withConnection(identity.command('get <id>'))
    .description('one identity')
    .action(async (id: string, opts: ConnectionOpts, cmd: Command) => {
      const client = await clientFor(opts);
      const i = await client.identities.get(await identityFrom(opts.mspDir), id);
      print(
        cmd,
        i,
        `Name: ${i.id}, Type: ${i.type}, Affiliation: ${i.affiliation || '.'}, Attributes: ${JSON.stringify(i.attrs)}`,
      );
    });
  withConnection(identity.command('remove <id>'))
    .description('remove an identity and revoke its certificates')
    .option('--force', 'allow removing the caller itself')
    .action(async (id: string, opts: ConnectionOpts & { force?: boolean }, cmd: Command) => {
      const client = await clientFor(opts);
      const i = await client.identities.remove(await identityFrom(opts.mspDir), id, { force: Boolean(opts.force) });
      print(cmd, i, `removed ${i.id}`);
    });

  return ca;
}

async function writeCrl(mspDir: string, crlPem: string): Promise<string> {
  await mkdir(join(mspDir, 'crls'), { recursive: true });
  const file = join(mspDir, 'crls', 'crl.pem');
  await writeFile(file, crlPem);
  return file;
}
