/**
 * The demo `npm start` runs against the network it brought up. Each step prints what it did and
 * what it checked; nothing is simulated: the transaction is signed with a key the org's CA
 * enrolled, ordered by the Raft orderers, and read back through another orderer's deliver stream.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  buildProposal,
  buildTransactionPayload,
  computeBlockHash,
  computeProposalHash,
  type Block,
  blockSignedBytes,
  bytesEqual,
  decodeBlock,
  decodeBlockHeader,
  decodeSignatureHeader,
  decodeSerializedIdentity,
  encodeChannelHeader,
  encodeEnvelope,
  encodeHeader,
  encodePayload,
  encodeProposalResponsePayload,
  encodeChaincodeAction,
  encodeSeekInfo,
  encodeSignatureHeader,
  encodeSerializedIdentity,
  encodeTxReadWriteSet,
  HeaderType,
  loadMspFromDir,
  merkleAuditPath,
  merkleLeafHash,
  MspManager,
  mspConfigsOf,
  decodeConfigEnvelopeFromBlock,
  sha256,
  sign,
  toHex,
  utf8,
  verifyMerkleAuditPath,
  type NetworkConfig,
} from '@loom/common';
import type { ChaincodeEvent } from '@loom/client';
import { gatewayFor } from './gateway.js';
import { httpRequest } from './http.js';
import { layout } from './layout.js';
import type { NetworkHandle, Progress } from './up.js';

const scheme = (net: NetworkConfig) => (net.tls.enabled ? 'https' : 'http');

/** Reads `count` blocks from `start` out of a deliver stream (4-byte big-endian length frames). */
async function deliver(url: string, body: Uint8Array, ca: string[]): Promise<Block[]> {
  const r = await httpRequest(url, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/octet-stream' },
    ca,
    timeoutMs: 20_000,
  });
  if (r.status !== 200) throw new Error(`deliver failed: HTTP ${r.status} ${r.body.toString()}`);
  const blocks: Block[] = [];
  let o = 0;
  while (o + 4 <= r.body.length) {
    const n = r.body.readUInt32BE(o);
    blocks.push(decodeBlock(new Uint8Array(r.body.subarray(o + 4, o + 4 + n))));
    o += 4 + n;
  }
  return blocks;
}

function broadcast(url: string, envelope: Uint8Array, ca: string[]) {
  return httpRequest(url, {
    method: 'POST',
    body: envelope,
    headers: { 'content-type': 'application/octet-stream' },
    ca,
    timeoutMs: 30_000,
  });
}

/**
 * The `npm start` demo: with the network's chaincode deployed, the client SDK path (below); when the
 * peers or chaincode are unavailable, the ordering-only fallback.
 */
export async function runDemo(handle: NetworkHandle, progress: Progress): Promise<void> {
  if (handle.chaincodeReady && handle.config.chaincodes.some((c) => c.name === 'basic')) {
    await runChaincodeDemo(handle, progress);
    return;
  }
  progress.step(
    `demo: ${handle.chaincodeNote ?? 'chaincode basic is not deployed'}; falling back to the ordering demo`,
  );
  await runOrderingDemo(handle, progress);
}

/** The fallback demo: a hand-made transaction ordered by the Raft orderers and proven in its block. */
export async function runOrderingDemo(handle: NetworkHandle, progress: Progress): Promise<void> {
  const net = handle.config;
  const channel = net.channels[0]!.name;
  const org1 = net.organizations[0]!;
  const client = (await loadMspFromDir(handle.crypto[org1.mspId]!.clientMspDir, org1.mspId)).signingIdentity!;
  const creator = { mspId: org1.mspId, idBytes: utf8(client.certPem) };
  const creatorBytes = encodeSerializedIdentity(creator);

  progress.step(`demo: User1@${org1.domain} signs a transaction for channel '${channel}' with the key its CA enrolled`);
  progress.step(
    'demo: (peers, chaincode and the gateway are not in this build yet, so the transaction carries a hand-written read-write set and no endorsements; the orderers order it all the same, and a committing peer would mark it ENDORSEMENT_POLICY_FAILURE)',
  );
  const proposal = buildProposal({
    channelId: channel,
    chaincodeName: 'basic',
    args: ['CreateAsset', 'asset1', 'blue', '5', 'Tomoko', '300'],
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
          reads: [{ key: 'asset1', version: null }],
          rangeQueriesInfo: [],
          writes: [
            {
              key: 'asset1',
              isDelete: false,
              value: utf8('{"AppraisedValue":300,"Color":"blue","ID":"asset1","Owner":"Tomoko","Size":5}'),
            },
          ],
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
  const envelope = encodeEnvelope({ payload, signature: sign(client.privateKey, payload) });

  const orderers = net.ordererOrganization.orderers;
  const via = orderers[1] ?? orderers[0]!;
  const t0 = Date.now();
  // A freshly started Raft group may still be electing its leader: the orderer answers 503 with
  // Retry-After until it has one, and resubmitting the same envelope is safe.
  let r = await broadcast(
    `${scheme(net)}://${via.host}:${via.port}/v1/channels/${channel}/broadcast`,
    envelope,
    handle.tlsRoots,
  );
  const deadline = Date.now() + 30_000;
  while (r.status === 503 && Date.now() < deadline) {
    await new Promise((ok) => setTimeout(ok, 1000 * Number(r.headers['retry-after'] ?? 1)));
    r = await broadcast(
      `${scheme(net)}://${via.host}:${via.port}/v1/channels/${channel}/broadcast`,
      envelope,
      handle.tlsRoots,
    );
  }
  if (r.status !== 200) throw new Error(`broadcast failed: HTTP ${r.status} ${r.body.toString()}`);
  const ack = JSON.parse(r.body.toString()) as { blockNumber: number; txIndex: number };
  progress.step(
    `demo: broadcast tx ${proposal.txId.slice(0, 16)}… through ${via.fqdn}: committed by the Raft group in block ${ack.blockNumber} (index ${ack.txIndex}) after ${Date.now() - t0} ms`,
  );

  // Read the block back from a different orderer, with the previous block for the hash chain.
  const from = orderers[2] ?? orderers[0]!;
  const seekHeader = encodeSignatureHeader({ creator: creatorBytes, nonce: randomBytes(24) });
  const seekPayload = encodePayload({
    header: encodeHeader({
      channelHeader: encodeChannelHeader({
        type: HeaderType.DELIVER_SEEK_INFO,
        version: 1,
        channelId: channel,
        txId: '',
        timestamp: Date.now(),
        extension: new Uint8Array(0),
      }),
      signatureHeader: seekHeader,
    }),
    data: encodeSeekInfo({
      start: { kind: 'oldest' },
      stop: { kind: 'specified', number: ack.blockNumber },
      behavior: 'BLOCK_UNTIL_READY',
    }),
  });
  const seek = encodeEnvelope({ payload: seekPayload, signature: sign(client.privateKey, seekPayload) });
  const blocks = await deliver(
    `${scheme(net)}://${from.host}:${from.port}/v1/channels/${channel}/deliver`,
    seek,
    handle.tlsRoots,
  );
  const block = blocks[ack.blockNumber];
  if (!block) throw new Error(`deliver from ${from.fqdn} did not return block ${ack.blockNumber}`);

  // Hash chain back to the genesis block, and the channel's MSPs from the genesis config.
  for (let i = 1; i < blocks.length; i++) {
    const h = decodeBlockHeader(blocks[i]!.header);
    if (!bytesEqual(h.previousHash, computeBlockHash(blocks[i - 1]!, sha256)))
      throw new Error(`hash chain broken at block ${i}`);
  }
  const config = decodeConfigEnvelopeFromBlock(blocks[0]!)!;
  const msps = new MspManager(mspConfigsOf(config));
  const signers: string[] = [];
  for (const s of block.metadata.signatures) {
    const id = decodeSerializedIdentity(decodeSignatureHeader(s.signatureHeader).creator);
    const who = await msps.verifySignature(
      id,
      blockSignedBytes(block.header, s.signatureHeader, block.metadata.consenterMetadata),
      s.signature,
    );
    signers.push(who.subject.commonName ?? who.mspId);
  }
  const index = block.data.findIndex((d) => bytesEqual(d, envelope));
  const leaves = block.data.map((d) => merkleLeafHash(sha256, d));
  const header = decodeBlockHeader(block.header);
  const proven = verifyMerkleAuditPath(
    sha256,
    leaves[index]!,
    index,
    leaves.length,
    merkleAuditPath(sha256, leaves, index),
    header.dataHash,
  );
  progress.step(
    `demo: block ${ack.blockNumber} read back from ${from.fqdn}: hash chain to genesis OK (${blocks.length} blocks), signed by ${signers.join(', ')} (verified against OrdererMSP), tx at index ${index} proven in dataHash ${toHex(header.dataHash).slice(0, 16)}… by a Merkle audit path: ${proven ? 'OK' : 'FAILED'}`,
  );
  if (!proven || index < 0) throw new Error('the transaction could not be proven in its block');
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

/**
 * The chaincode demo, through the client SDK as User1 of the first organization: CreateAsset
 * (submit, commit status), ReadAsset evaluated on the second organization's peer, TransferAsset
 * with its chaincode event, GetAssetHistory, and a transaction proof checked against the peer's
 * signed ledger digest, client-side.
 */
export async function runChaincodeDemo(handle: NetworkHandle, progress: Progress): Promise<void> {
  const net = handle.config;
  const cc = net.chaincodes.find((c) => c.name === 'basic')!;
  const channel = cc.channel;
  const org1 = net.organizations[0]!;
  const org2 = net.organizations[1] ?? org1;
  const peer1 = org1.peers[0]!;
  const peer2 = org2.peers[0]!;
  const g1 = await gatewayFor(net, org1, 'User1', { tlsRoots: handle.tlsRoots });
  const g2 = await gatewayFor(net, org2, 'User1', { tlsRoots: handle.tlsRoots });
  try {
    const contract1 = g1.getNetwork(channel).getContract(cc.name);
    const contract2 = g2.getNetwork(channel).getContract(cc.name);
    const id = `asset-${Date.now().toString(36)}`;

    let t = Date.now();
    const created = await contract1.submitAsync('CreateAsset', { arguments: [id, 'blue', '5', 'Tomoko', '300'] });
    const status = await created.getStatus();
    if (!status.successful) throw new Error(`CreateAsset committed as ${status.codeName}`);
    progress.step(
      `demo: User1@${org1.domain} submitted CreateAsset(${id}, blue, 5, Tomoko, 300) through ${peer1.fqdn}: tx ${status.transactionId.slice(0, 16)}… committed ${status.codeName} in block ${status.blockNumber} (${Date.now() - t} ms)`,
    );

    // The commit status came from Org1's peer; wait until Org2's peer has committed that block too.
    t = Date.now();
    const blocks2 = await g2.getNetwork(channel).getBlockEvents({ startBlock: status.blockNumber });
    try {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${peer2.fqdn} did not commit block ${status.blockNumber} in 60 s`)),
          60_000,
        );
      });
      const first = (async () => {
        for await (const _ of blocks2) return;
      })();
      await Promise.race([first, timeout]).finally(() => clearTimeout(timer));
    } finally {
      blocks2.close();
    }
    const read = text(await contract2.evaluateTransaction('ReadAsset', id));
    progress.step(
      `demo: User1@${org2.domain} evaluated ReadAsset(${id}) on ${peer2.fqdn}: ${read} (${Date.now() - t} ms)`,
    );

    t = Date.now();
    const events = await g1.getNetwork(channel).getChaincodeEvents(cc.name, { startBlock: status.blockNumber });
    try {
      const transfer = await contract1.submitAsync('TransferAsset', { arguments: [id, 'Max'] });
      const ts = await transfer.getStatus();
      if (!ts.successful) throw new Error(`TransferAsset committed as ${ts.codeName}`);
      const it = events[Symbol.asyncIterator]();
      let event: ChaincodeEvent | undefined;
      const deadline = Date.now() + 20_000;
      while (!event && Date.now() < deadline) {
        const next = await Promise.race([
          it.next(),
          new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), Math.max(0, deadline - Date.now()))),
        ]);
        if (next === 'timeout' || next.done) break;
        if (next.value.transactionId === ts.transactionId) event = next.value;
      }
      if (!event) throw new Error('no TransferAsset chaincode event within 20 s');
      progress.step(
        `demo: TransferAsset(${id}, Max) committed in block ${ts.blockNumber} (old owner ${text(transfer.getResult())}); chaincode event '${event.eventName}' received through getChaincodeEvents: ${text(event.payload)} (${Date.now() - t} ms)`,
      );
    } finally {
      events.close();
    }

    const history = JSON.parse(text(await contract1.evaluateTransaction('GetAssetHistory', id))) as unknown[];
    progress.step(`demo: GetAssetHistory(${id}): ${history.length} versions: ${JSON.stringify(history)}`);

    const network = g1.getNetwork(channel);
    const digest = await network.getLedgerDigest();
    const proof = await network.getTransactionProof(status.transactionId);
    // Trust the peer's certificate from its own MSP folder, not what the gateway says.
    const peerCert = await readFile(
      join(layout.nodeDir(net, org1, 'peers', peer1.fqdn), 'msp', 'signcerts', 'cert.pem'),
      'utf8',
    );
    const ok = network.verifyProof(proof, digest, peerCert);
    progress.step(
      `demo: ledger digest of ${channel} signed by ${peer1.fqdn}: height ${digest.digest.height}, ${digest.digest.txCount} transactions, root ${toHex(digest.digest.root).slice(0, 16)}…; proof of the CreateAsset tx (block ${proof.blockNum}, tx ${proof.txNum}) verified client-side: ${ok ? 'OK' : 'FAILED'}`,
    );
    if (!ok) throw new Error('the transaction proof did not verify against the signed ledger digest');
  } finally {
    g1.close();
    g2.close();
  }
}
