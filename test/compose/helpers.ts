/**
 * Host-side client helpers for the containerized network: a signed transaction envelope, broadcast
 * with bounded retries, deliver, block verification (hash chain, orderer signatures, Merkle proof),
 * orderer metrics, and `docker` calls with clear failures.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  type Block,
  blockSignedBytes,
  buildProposal,
  buildTransactionPayload,
  bytesEqual,
  computeBlockHash,
  computeProposalHash,
  decodeBlock,
  decodeBlockHeader,
  decodeConfigEnvelopeFromBlock,
  decodeSerializedIdentity,
  decodeSignatureHeader,
  encodeChaincodeAction,
  encodeChannelHeader,
  encodeEnvelope,
  encodeHeader,
  encodePayload,
  encodeProposalResponsePayload,
  encodeSeekInfo,
  encodeSerializedIdentity,
  encodeSignatureHeader,
  encodeTxReadWriteSet,
  HeaderType,
  MspManager,
  merkleAuditPath,
  merkleLeafHash,
  mspConfigsOf,
  type NetworkConfig,
  sha256,
  sign,
  utf8,
  verifyMerkleAuditPath,
} from '@loom/common';
import { httpRequest } from '../../packages/cli/src/network/http.js';

export type Orderer = NetworkConfig['ordererOrganization']['orderers'][number];

export interface Client {
  mspId: string;
  certPem: string;
  privateKey: Parameters<typeof sign>[0];
  tlsRoots: string[];
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `docker …`; throws with the command's stderr on failure. */
export function docker(args: string[], timeoutMs = 60_000): string {
  try {
    return execFileSync('docker', args, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`docker ${args.join(' ')} failed: ${err.stderr?.trim() || err.message}`);
  }
}

/** The published address of an orderer's listeners on the host (always loopback). */
export const publicUrl = (net: NetworkConfig, o: Orderer) =>
  `${net.tls.enabled ? 'https' : 'http'}://127.0.0.1:${o.port}`;

/** A transaction like the demo's: a hand-written read-write set, signed by the client. */
export function transaction(client: Client, channel: string, key: string): { txId: string; envelope: Uint8Array } {
  const creator = { mspId: client.mspId, idBytes: utf8(client.certPem) };
  const proposal = buildProposal({
    channelId: channel,
    chaincodeName: 'basic',
    args: ['CreateAsset', key, 'blue', '5', 'Tomoko', '300'],
    creator,
    nonce: randomBytes(24),
    timestamp: Date.now(),
    hash: sha256,
  });
  const rwset = encodeTxReadWriteSet({
    nsRwsets: [
      {
        namespace: 'basic',
        rwset: {
          reads: [{ key, version: null }],
          rangeQueriesInfo: [],
          writes: [{ key, isDelete: false, value: utf8(JSON.stringify({ ID: key, Color: 'blue' })) }],
          metadataWrites: [],
        },
        collectionHashedRwsets: [],
      },
    ],
  });
  const prp = encodeProposalResponsePayload({
    proposalHash: computeProposalHash(proposal.headerBytes, proposal.inputBytes, sha256),
    extension: encodeChaincodeAction({
      results: rwset,
      events: new Uint8Array(0),
      response: { status: 200, message: '', payload: new Uint8Array(0) },
      chaincodeName: 'basic',
      chaincodeVersion: '1.0',
    }),
  });
  const payload = buildTransactionPayload(proposal, prp, []);
  return { txId: proposal.txId, envelope: encodeEnvelope({ payload, signature: sign(client.privateKey, payload) }) };
}

/**
 * Broadcasts through one orderer until it is ordered. 503 (no leader yet, or the leader just
 * went away) and connection errors are retried within `timeoutMs`; resubmitting is safe.
 */
export async function broadcast(
  net: NetworkConfig,
  via: Orderer,
  channel: string,
  envelope: Uint8Array,
  roots: string[],
  timeoutMs = 60_000,
): Promise<{ blockNumber: number; txIndex: number; attempts: number }> {
  const url = `${publicUrl(net, via)}/v1/channels/${channel}/broadcast`;
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (let attempts = 1; Date.now() < deadline; attempts++) {
    try {
      const r = await httpRequest(url, {
        method: 'POST',
        body: envelope,
        headers: { 'content-type': 'application/octet-stream' },
        ca: roots,
        timeoutMs: 20_000,
      });
      if (r.status === 200)
        return { ...(JSON.parse(r.body.toString()) as { blockNumber: number; txIndex: number }), attempts };
      last = `HTTP ${r.status} ${r.body.toString().slice(0, 300)}`;
      if (r.status !== 503 && r.status < 500) throw new Error(`broadcast via ${via.fqdn} rejected: ${last}`);
      await sleep(1000 * Math.min(Number(r.headers['retry-after'] ?? 1) || 1, 3));
    } catch (e) {
      if ((e as Error).message.includes('rejected')) throw e;
      last = (e as Error).message;
      await sleep(1000);
    }
  }
  throw new Error(`broadcast via ${via.fqdn} not ordered within ${timeoutMs} ms (last: ${last})`);
}

/** Blocks `start..stop` from one orderer's deliver stream (waits until it has `stop`). */
export async function deliver(
  net: NetworkConfig,
  from: Orderer,
  channel: string,
  client: Client,
  start: number,
  stop: number,
  timeoutMs = 30_000,
): Promise<Block[]> {
  const creatorBytes = encodeSerializedIdentity({ mspId: client.mspId, idBytes: utf8(client.certPem) });
  const payload = encodePayload({
    header: encodeHeader({
      channelHeader: encodeChannelHeader({
        type: HeaderType.DELIVER_SEEK_INFO,
        version: 1,
        channelId: channel,
        txId: '',
        timestamp: Date.now(),
        extension: new Uint8Array(0),
      }),
      signatureHeader: encodeSignatureHeader({ creator: creatorBytes, nonce: randomBytes(24) }),
    }),
    data: encodeSeekInfo({
      start: { kind: 'specified', number: start },
      stop: { kind: 'specified', number: stop },
      behavior: 'BLOCK_UNTIL_READY',
    }),
  });
  const seek = encodeEnvelope({ payload, signature: sign(client.privateKey, payload) });
  const r = await httpRequest(`${publicUrl(net, from)}/v1/channels/${channel}/deliver`, {
    method: 'POST',
    body: seek,
    headers: { 'content-type': 'application/octet-stream' },
    ca: client.tlsRoots,
    timeoutMs,
  });
  if (r.status !== 200) throw new Error(`deliver from ${from.fqdn} failed: HTTP ${r.status} ${r.body.toString()}`);
  const blocks: Block[] = [];
  for (let o = 0; o + 4 <= r.body.length; ) {
    const n = r.body.readUInt32BE(o);
    blocks.push(decodeBlock(new Uint8Array(r.body.subarray(o + 4, o + 4 + n))));
    o += 4 + n;
  }
  return blocks;
}

/**
 * Checks blocks 0..n: the hash chain, every block's orderer signatures against the channel's
 * orderer MSP (from the genesis config), and, for `envelope`, its Merkle proof in its block.
 * Returns the signers of the block holding `envelope`.
 */
export async function verifyChain(
  blocks: Block[],
  ordererMspId: string,
  envelope?: Uint8Array,
  inBlock?: number,
): Promise<string[]> {
  if (blocks.length === 0) throw new Error('no blocks to verify');
  for (let i = 1; i < blocks.length; i++) {
    const h = decodeBlockHeader(blocks[i]!.header);
    if (!bytesEqual(h.previousHash, computeBlockHash(blocks[i - 1]!, sha256)))
      throw new Error(`hash chain broken at block ${i}`);
  }
  const config = decodeConfigEnvelopeFromBlock(blocks[0]!);
  if (!config) throw new Error('block 0 is not a config block');
  const msps = new MspManager(mspConfigsOf(config));
  let signers: string[] = [];
  for (let i = 1; i < blocks.length; i++) {
    const block = blocks[i]!;
    if (block.metadata.signatures.length === 0) throw new Error(`block ${i} carries no orderer signature`);
    const who: string[] = [];
    for (const s of block.metadata.signatures) {
      const id = decodeSerializedIdentity(decodeSignatureHeader(s.signatureHeader).creator);
      const v = await msps.verifySignature(
        id,
        blockSignedBytes(block.header, s.signatureHeader, block.metadata.consenterMetadata),
        s.signature,
      );
      if (v.mspId !== ordererMspId) throw new Error(`block ${i} signed by ${v.mspId}, not ${ordererMspId}`);
      who.push(v.subject.commonName ?? v.mspId);
    }
    if (i === inBlock) signers = who;
  }
  if (envelope && inBlock !== undefined) {
    const block = blocks[inBlock];
    if (!block) throw new Error(`block ${inBlock} not among the ${blocks.length} delivered`);
    const index = block.data.findIndex((d) => bytesEqual(d, envelope));
    if (index < 0) throw new Error(`transaction not found in block ${inBlock}`);
    const leaves = block.data.map((d) => merkleLeafHash(sha256, d));
    const ok = verifyMerkleAuditPath(
      sha256,
      leaves[index]!,
      index,
      leaves.length,
      merkleAuditPath(sha256, leaves, index),
      decodeBlockHeader(block.header).dataHash,
    );
    if (!ok) throw new Error(`transaction's Merkle proof in block ${inBlock} failed`);
  }
  return signers;
}

/** One orderer's Raft view of `channel` from its /metrics (operations port, published on loopback). */
export async function raftView(o: Orderer, channel: string): Promise<{ leader: boolean; height: number } | undefined> {
  try {
    const r = await httpRequest(`http://127.0.0.1:${o.operationsPort}/metrics`, { timeoutMs: 3000 });
    if (r.status !== 200) return undefined;
    const text = r.body.toString();
    const metric = (name: string) => {
      const m = new RegExp(`^${name}\\{[^}]*channel="${channel}"[^}]*\\} (\\S+)$`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    };
    const height = metric('loom_orderer_ledger_height');
    if (height === undefined) return undefined;
    return { leader: metric('loom_orderer_raft_is_leader') === 1, height };
  } catch {
    return undefined;
  }
}

/** Polls until `check` returns a value (not undefined), or throws `what` after `timeoutMs`. */
export async function eventually<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(500);
  }
}
