/**
 * `loom governance propose|vote|list|show|apply|expire`: member governance by vote, on the
 * `_governance` system chaincode. A member org's admin proposes an action (invite an org with its
 * MSP, remove an org, change batch settings or a channel policy); member admins vote yes/no before
 * the deadline; the proposal is approved under its threshold and becomes a config update that the
 * peers submit to the orderers. A yes vote signs the proposal's config update (the admin signature
 * the modification policy needs); the approving vote also signs the CONFIG_UPDATE envelope.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Gateway, GatewayError } from '@loom/client';
import {
  buildConfigUpdateEnvelope,
  type ConfigSignature,
  decodeConfigUpdate,
  fromBase64,
  type GovernanceAction,
  LoomError,
  loadMspFromDir,
  type NetworkConfig,
  type OrgConfig,
  parseDurationMs,
  signConfigUpdate,
  signerFromPem,
  tallyVotes,
  toBase64,
  type VoteValue,
} from '@loom/common';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { findOrg, gatewayFor, loadIdentity, requireNetworkData } from '../network/gateway.js';
import { output } from '../output.js';
import { loadConfig } from './network.js';

const NS = '_governance';
const dec = new TextDecoder();

interface Opts {
  config?: string;
  data?: string;
  org?: string;
  user?: string;
  peer?: string;
  channel?: string;
}

interface ProposalJson {
  id: string;
  channelId: string;
  proposer: string;
  description: string;
  summary: string[];
  configUpdate: string;
  baseSequence: number;
  members: string[];
  threshold: { percentage: number; comparator: 'GREATER_THAN' | 'GREATER_THAN_OR_EQUAL_TO' };
  createdAtMs: number;
  deadlineMs: number;
  votes: Record<
    string,
    { vote: VoteValue; txId: string; atMs: number; configSignature?: { signatureHeader: string; signature: string } }
  >;
  status: string;
  recordedStatus: string;
  appliedBlock?: number;
  tally: { yes: number; no: number; outstanding: number; members: number; yesNeeded: number; outcome: string };
}

const withCommon = (c: Command) =>
  c
    .option('-c, --config <file>', 'network-config file', 'network-config/default.yaml')
    .option('--data <dir>', 'data directory (overrides the config)')
    .option('--org <mspId>', 'organization acting (default: the first)')
    .option('--user <name>', 'identity of the organization', 'Admin')
    .option('--peer <url>', 'gateway peer (default: the org’s first peer)')
    .option('-C, --channel <name>', 'channel (default: the first)');

async function open(opts: Opts): Promise<{ net: NetworkConfig; g: Gateway; channel: string; mspId: string }> {
  const net = await loadConfig(opts);
  requireNetworkData(net);
  const org = opts.org ? findOrg(net, opts.org) : net.organizations[0];
  if (!org) throw new LoomError('ORG_NOT_FOUND', `${net.source} has no peer organization`);
  const channel = opts.channel ?? net.channels[0]?.name;
  if (!channel) throw new LoomError('CHANNEL_NOT_FOUND', 'no channel: pass -C <channel>');
  const peer = opts.peer ? new URL(opts.peer) : undefined;
  const g = await gatewayFor(
    net,
    org,
    opts.user ?? 'Admin',
    peer ? { peer: { host: peer.hostname, port: Number(peer.port) } } : {},
  );
  return { net, g, channel, mspId: org.mspId };
}

/** The `_governance` refusal code inside a gateway error (from the endorsers' messages), if any. */
function governanceCode(e: unknown): string | undefined {
  const texts: string[] = [];
  if (e instanceof GatewayError) for (const x of e.endorsers) texts.push(`${x.code ?? ''} ${x.message ?? ''}`);
  texts.push((e as Error)?.message ?? '');
  for (const t of texts) {
    const m = /\b(GOVERNANCE_[A-Z_]+)\b/.exec(t);
    if (m) return m[1];
  }
  return undefined;
}

/** A gateway failure as a LoomError with the `_governance` code when the endorsers gave one. */
function explain(e: unknown): LoomError {
  const code = governanceCode(e);
  const x = e as { code?: string; message?: string };
  if (code) {
    let message = x.message ?? String(e);
    if (e instanceof GatewayError) {
      const m = e.endorsers.map((d) => d.message ?? '').find((t) => t.includes(code));
      if (m) message = m.slice(m.indexOf(code) + code.length).replace(/^:\s*/, '');
    }
    return new LoomError(code, message, { cause: e });
  }
  return e instanceof LoomError ? e : new LoomError(x.code ?? 'ERROR', x.message ?? String(e), { cause: e });
}

async function evaluate<T>(g: Gateway, channel: string, fn: string, arg: unknown): Promise<T> {
  try {
    const r = await g.getNetwork(channel).getContract(NS).evaluateTransaction(fn, JSON.stringify(arg));
    return JSON.parse(dec.decode(r)) as T;
  } catch (e) {
    throw explain(e);
  }
}

async function submit<T>(g: Gateway, channel: string, fn: string, arg: unknown): Promise<T> {
  try {
    const r = await g.getNetwork(channel).getContract(NS).submitTransaction(fn, JSON.stringify(arg));
    return JSON.parse(dec.decode(r)) as T;
  } catch (e) {
    throw explain(e);
  }
}

const BATCH_KEYS: Record<string, 'batchTimeoutMs' | 'maxMessageCount' | 'absoluteMaxBytes' | 'preferredMaxBytes'> = {
  maxmessagecount: 'maxMessageCount',
  batchtimeout: 'batchTimeoutMs',
  batchtimeoutms: 'batchTimeoutMs',
  absolutemaxbytes: 'absoluteMaxBytes',
  preferredmaxbytes: 'preferredMaxBytes',
};

/** `batch.maxMessageCount=10`, `batch.batchTimeout=2s`. */
export function parseSetting(text: string): GovernanceAction {
  const m = /^batch\.([A-Za-z]+)=(.+)$/.exec(text.trim());
  const key = m ? BATCH_KEYS[m[1]!.toLowerCase()] : undefined;
  if (!m || !key) {
    throw new LoomError(
      'INVALID_ARGUMENT',
      `--set ${text}: expected batch.<maxMessageCount|batchTimeout|absoluteMaxBytes|preferredMaxBytes>=<value>`,
    );
  }
  const raw = m[2]!.trim();
  const value = key === 'batchTimeoutMs' ? parseDurationMs(raw) : Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new LoomError('INVALID_ARGUMENT', `--set ${text}: the value must be a positive integer`);
  }
  return { type: 'SET_BATCH', batch: { [key]: value } };
}

/** `Endorsement=MAJORITY Endorsement`. */
export function parsePolicySetting(text: string): GovernanceAction {
  const i = text.indexOf('=');
  if (i <= 0 || i === text.length - 1) {
    throw new LoomError('INVALID_ARGUMENT', `--set-policy ${text}: expected <PolicyName>=<rule>`);
  }
  return { type: 'SET_POLICY', name: text.slice(0, i).trim(), rule: text.slice(i + 1).trim() };
}

const defaultOrgPolicies = (mspId: string) => {
  const p = (rule: string) => ({ rule, version: 0, modPolicy: 'Admins' });
  return {
    Readers: p(`OR('${mspId}.admin', '${mspId}.peer', '${mspId}.client')`),
    Writers: p(`OR('${mspId}.admin', '${mspId}.client')`),
    Admins: p(`OR('${mspId}.admin')`),
    Endorsement: p(`OR('${mspId}.peer')`),
  };
};

function anchor(text: string): { host: string; port: number } {
  const m = /^([^:]+):(\d{1,5})$/.exec(text.trim());
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
    throw new LoomError('INVALID_ARGUMENT', `--anchor-peer ${text}: expected host:port`);
  }
  return { host: m[1]!, port: Number(m[2]) };
}

/** An org to invite: a Fabric MSP folder (with --msp-id) or a YAML/JSON file `{mspId, mspDir|msp, anchorPeers?, policies?}`. */
export async function orgToInvite(path: string, mspId: string | undefined, anchors: string[]): Promise<OrgConfig> {
  if (!existsSync(path)) throw new LoomError('INVALID_ARGUMENT', `--invite-org ${path}: no such file or directory`);
  let id = mspId;
  let dir: string | undefined;
  let file: Record<string, unknown> = {};
  if (statSync(path).isDirectory()) dir = path;
  else {
    const v = parseYaml(await readFile(path, 'utf8')) as unknown;
    if (!v || typeof v !== 'object')
      throw new LoomError('INVALID_ARGUMENT', `--invite-org ${path}: not a YAML/JSON object`);
    file = v as Record<string, unknown>;
    id = id ?? (typeof file.mspId === 'string' ? file.mspId : undefined);
    if (typeof file.mspDir === 'string') dir = join(path, '..', file.mspDir);
  }
  if (!id) throw new LoomError('INVALID_ARGUMENT', 'name the invited organization: --msp-id <MSPID>');
  let msp = file.msp as OrgConfig['msp'] | undefined;
  if (dir) {
    const loaded = await loadMspFromDir(dir, id);
    const c = loaded.config;
    msp = {
      rootCerts: [...c.rootCerts],
      intermediateCerts: [...(c.intermediateCerts ?? [])],
      admins: [...(c.admins ?? [])],
      crls: [...(c.revocationList ?? [])],
      tlsRootCerts: [...(c.tlsRootCerts ?? [])],
      tlsIntermediateCerts: [...(c.tlsIntermediateCerts ?? [])],
      nodeOUs: Boolean(c.nodeOUs?.enable),
    };
  }
  if (!msp)
    throw new LoomError('INVALID_ARGUMENT', `--invite-org ${path}: give an MSP folder, or "mspDir"/"msp" in the file`);
  const fileAnchors = Array.isArray(file.anchorPeers) ? (file.anchorPeers as { host: string; port: number }[]) : [];
  return {
    mspId: id,
    msp,
    anchorPeers: [...fileAnchors, ...anchors.map(anchor)],
    policies: (file.policies as OrgConfig['policies'] | undefined) ?? defaultOrgPolicies(id),
    version: 0,
    modPolicy: 'Admins',
  };
}

const COMPARATORS: Record<string, 'GREATER_THAN' | 'GREATER_THAN_OR_EQUAL_TO'> = {
  'greater-than': 'GREATER_THAN',
  gt: 'GREATER_THAN',
  greater_than: 'GREATER_THAN',
  'greater-or-equal': 'GREATER_THAN_OR_EQUAL_TO',
  'greater-than-or-equal-to': 'GREATER_THAN_OR_EQUAL_TO',
  ge: 'GREATER_THAN_OR_EQUAL_TO',
  greater_than_or_equal_to: 'GREATER_THAN_OR_EQUAL_TO',
};

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

function showText(p: ProposalJson): string {
  const lines = [
    `proposal ${p.id} on ${p.channelId}: ${p.status}${p.status !== p.recordedStatus ? ` (recorded ${p.recordedStatus})` : ''}`,
    `  proposed by ${p.proposer} at ${iso(p.createdAtMs)}, voting closes ${iso(p.deadlineMs)}`,
    ...(p.description ? [`  description: ${p.description}`] : []),
    ...p.summary.map((s) => `  action: ${s}`),
    `  threshold: yes ${p.threshold.comparator === 'GREATER_THAN' ? '>' : '>='} ${p.threshold.percentage}% of ${p.members.length} members (${p.members.join(', ')}); needs ${p.tally.yesNeeded} yes`,
    `  votes: ${p.tally.yes} yes, ${p.tally.no} no, ${p.tally.outstanding} outstanding`,
    ...Object.entries(p.votes).map(([m, v]) => `    ${m}: ${v.vote} at ${iso(v.atMs)} (tx ${v.txId.slice(0, 16)}…)`),
    `  config update: on sequence ${p.baseSequence}${p.appliedBlock !== undefined ? `, applied in config block ${p.appliedBlock}` : ''}`,
  ];
  return lines.join('\n');
}

function listText(ps: ProposalJson[]): string {
  if (ps.length === 0) return 'no proposals';
  const rows = ps.map((p) => [
    p.id,
    p.status,
    p.proposer,
    `${p.tally.yes}/${p.tally.no}/${p.members.length}`,
    iso(p.deadlineMs),
    p.summary.join('; '),
  ]);
  const head = ['ID', 'STATUS', 'PROPOSER', 'YES/NO/MEMBERS', 'DEADLINE', 'ACTIONS'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [fmt(head), ...rows.map(fmt)].join('\n');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function registerGovernanceCommands(program: Command): void {
  const json = () => Boolean(program.opts().json);
  const act =
    <A extends unknown[]>(fn: (...a: A) => Promise<void>) =>
    async (...a: A) => {
      try {
        await fn(...a);
      } catch (e) {
        const x = e as { code?: string; message?: string; details?: unknown };
        if (json()) {
          process.stdout.write(
            `${JSON.stringify({ error: { code: x.code ?? 'ERROR', message: x.message ?? String(e) } }, null, 2)}\n`,
          );
        }
        throw e;
      }
    };

  const gov = program
    .command('governance')
    .description('propose channel changes and vote on them as member organizations (admins)');

  withCommon(gov.command('propose'))
    .description('propose a change: invite or remove an org, change batch settings or a policy')
    .option('--invite-org <path>', 'MSP folder (with --msp-id) or YAML/JSON file of the org to invite')
    .option('--msp-id <id>', 'MSP id of the invited org')
    .option(
      '--anchor-peer <host:port>',
      'anchor peer of the invited org (repeatable)',
      (v, a: string[]) => [...a, v],
      [],
    )
    .option('--remove-org <mspId>', 'remove an organization from the channel')
    .option(
      '--set <key=value>',
      'batch.maxMessageCount=N, batch.batchTimeout=2s, … (repeatable)',
      (v, a: string[]) => [...a, v],
      [],
    )
    .option('--set-policy <Name=rule>', 'set a channel policy (repeatable)', (v, a: string[]) => [...a, v], [])
    .option('--threshold <percent>', 'approval threshold percentage (default: the channel’s)')
    .option('--comparator <c>', 'greater-than | greater-or-equal')
    .option('--duration <d>', 'voting period, e.g. 24h, 30m (default: the channel’s)')
    .option('--description <text>', 'what and why')
    .action(
      act(
        async (
          o: Opts & {
            inviteOrg?: string;
            mspId?: string;
            anchorPeer: string[];
            removeOrg?: string;
            set: string[];
            setPolicy: string[];
            threshold?: string;
            comparator?: string;
            duration?: string;
            description?: string;
          },
        ) => {
          const actions: GovernanceAction[] = [];
          if (o.inviteOrg)
            actions.push({ type: 'INVITE_ORG', org: await orgToInvite(o.inviteOrg, o.mspId, o.anchorPeer) });
          if (o.removeOrg) actions.push({ type: 'REMOVE_ORG', mspId: o.removeOrg });
          for (const s of o.set) actions.push(parseSetting(s));
          for (const s of o.setPolicy) actions.push(parsePolicySetting(s));
          if (actions.length === 0) {
            throw new LoomError(
              'INVALID_ARGUMENT',
              'nothing to propose: use --invite-org, --remove-org, --set or --set-policy',
            );
          }
          const arg: Record<string, unknown> = { actions };
          if (o.threshold !== undefined || o.comparator !== undefined) {
            const percentage = Number(o.threshold ?? 50);
            const comparator = COMPARATORS[(o.comparator ?? 'greater-than').toLowerCase()];
            if (!comparator) throw new LoomError('INVALID_ARGUMENT', '--comparator: greater-than or greater-or-equal');
            arg.threshold = { percentage, comparator };
          }
          if (o.duration !== undefined) arg.durationMs = parseDurationMs(o.duration);
          if (o.description !== undefined) arg.description = o.description;
          const { g, channel } = await open(o);
          try {
            const p = await submit<ProposalJson>(g, channel, 'Propose', arg);
            output(json(), p, () => `proposed ${p.id}\n${showText(p)}`);
          } finally {
            g.close();
          }
        },
      ),
    );

  withCommon(gov.command('vote <proposalId> <vote>'))
    .description('vote yes or no as your organization (admin); a yes vote signs the config update')
    .option('--no-wait', 'do not wait for an approved update to be applied')
    .action(
      act(async (id: string, v: string, o: Opts & { wait: boolean }) => {
        const value = v.toUpperCase();
        if (value !== 'YES' && value !== 'NO') throw new LoomError('INVALID_ARGUMENT', 'the vote is yes or no');
        const { net, g, channel, mspId } = await open(o);
        try {
          const me = await loadIdentity(net, findOrg(net, mspId), o.user ?? 'Admin');
          const signer = { mspId: me.mspId, idBytes: new TextEncoder().encode(me.certPem) };
          const sign = signerFromPem(me.keyPem);
          let result: ProposalJson | undefined;
          // The approving vote carries an envelope built from what it read: retry when the state moved.
          for (let attempt = 1; attempt <= 4 && !result; attempt++) {
            const p = await evaluate<ProposalJson>(g, channel, 'GetProposal', { proposalId: id });
            const arg: Record<string, unknown> = { proposalId: id, vote: value };
            if (value === 'YES') {
              const update = fromBase64(p.configUpdate);
              const s = await signConfigUpdate(update, signer, (m) => sign.sign(m), randomBytes(24));
              const mine = { signatureHeader: toBase64(s.signatureHeader), signature: toBase64(s.signature) };
              arg.configSignature = mine;
              const votes: Record<string, VoteValue> = {};
              for (const [m, x] of Object.entries(p.votes)) votes[m] = x.vote;
              votes[mspId] = 'YES';
              if (!p.votes[mspId] && tallyVotes(p.members, votes, p.threshold).outcome === 'APPROVED') {
                const signatures: ConfigSignature[] = Object.keys(votes)
                  .sort()
                  .filter((m) => votes[m] === 'YES')
                  .map((m) => {
                    const cs = m === mspId ? mine : p.votes[m]!.configSignature!;
                    return { signatureHeader: fromBase64(cs.signatureHeader), signature: fromBase64(cs.signature) };
                  });
                arg.applyEnvelope = toBase64(
                  await buildConfigUpdateEnvelope({
                    channelId: decodeConfigUpdate(update).channelId,
                    configUpdate: update,
                    signatures,
                    signer,
                    sign: (m) => sign.sign(m),
                    nonce: randomBytes(24),
                    timestampMs: Date.now(),
                  }),
                );
              }
            }
            try {
              result = await submit<ProposalJson>(g, channel, 'Vote', arg);
            } catch (e) {
              const code = (e as LoomError).code;
              const retry = code === 'GOVERNANCE_APPLY_ENVELOPE_MISMATCH' || /MVCC/.test(String((e as Error).message));
              if (!retry || attempt === 4) throw e;
              await sleep(500 * attempt);
            }
          }
          let p = result!;
          if (p.status === 'APPROVED' && o.wait) {
            // Member peers broadcast the update after the approving block; wait for its config block.
            const deadline = Date.now() + 180_000;
            while (p.status === 'APPROVED' && Date.now() < deadline) {
              await sleep(500);
              p = await evaluate<ProposalJson>(g, channel, 'GetProposal', { proposalId: id });
            }
            if (p.status === 'APPLIED' && p.recordedStatus !== 'APPLIED') {
              try {
                p = await submit<ProposalJson>(g, channel, 'Apply', { proposalId: id });
              } catch (e) {
                if ((e as LoomError).code !== 'GOVERNANCE_ALREADY_APPLIED') throw e;
              }
            }
          }
          output(json(), p, () => `${mspId} voted ${value} on ${id}\n${showText(p)}`);
        } finally {
          g.close();
        }
      }),
    );

  withCommon(gov.command('list'))
    .description('list the channel’s proposals')
    .action(
      act(async (o: Opts) => {
        const { g, channel } = await open({ user: 'User1', ...o });
        try {
          const ps = await evaluate<ProposalJson[]>(g, channel, 'ListProposals', {});
          output(json(), ps, () => listText(ps));
        } finally {
          g.close();
        }
      }),
    );

  withCommon(gov.command('show <proposalId>'))
    .description('show a proposal, its votes and its outcome')
    .action(
      act(async (id: string, o: Opts) => {
        const { g, channel } = await open({ user: 'User1', ...o });
        try {
          const p = await evaluate<ProposalJson>(g, channel, 'GetProposal', { proposalId: id });
          output(json(), p, () => showText(p));
        } finally {
          g.close();
        }
      }),
    );

  withCommon(gov.command('apply <proposalId>'))
    .description('record an approved proposal as applied once its config block is committed (once)')
    .action(
      act(async (id: string, o: Opts) => {
        const { g, channel } = await open(o);
        try {
          const p = await submit<ProposalJson>(g, channel, 'Apply', { proposalId: id });
          output(json(), p, () => showText(p));
        } finally {
          g.close();
        }
      }),
    );

  withCommon(gov.command('expire <proposalId>'))
    .description('record a proposal whose deadline passed undecided as EXPIRED')
    .action(
      act(async (id: string, o: Opts) => {
        const { g, channel } = await open(o);
        try {
          const p = await submit<ProposalJson>(g, channel, 'Expire', { proposalId: id });
          output(json(), p, () => showText(p));
        } finally {
          g.close();
        }
      }),
    );
}
