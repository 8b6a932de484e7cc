/**
 * Client SDK flows against the real gateway of a launched network (#8): `loom network up --detach`
 * (CAs, 3 Raft orderers, 2 peer processes, `basic` deployed), then, with only the SDK:
 *
 * - offline signing: a gateway with no signer; `newProposal` → bytes signed elsewhere (node:crypto
 *   with the user's key, as an HSM or a wallet would) → `endorse` → transaction bytes signed →
 *   `submit` → commit bytes signed → `getStatus`; a signature by the wrong key is refused with a code;
 * - chaincode events resumed from a checkpoint: read some TransferAsset events, checkpoint each,
 *   disconnect (also in the middle of a block holding several events), commit more while away,
 *   reconnect with the checkpoint: every event exactly once, in order;
 * - block events resumed from a checkpoint the same way: every block number exactly once.
 *
 * Ports: the default network-config's minus 4000 (3050–5454).
 */
import { generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ChaincodeEvent,
  type CloseableAsyncIterable,
  connect,
  EndorseError,
  type Gateway,
  GatewayError,
  InMemoryCheckpointer,
} from '@loom/client';
import { FileCheckpointer } from '@loom/client/file-checkpointer';
import { loadNetworkConfig, type NetworkConfig } from '@loom/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayFor, loadIdentity, networkTlsRoots } from '../../packages/cli/src/network/gateway.js';
import { gatewayHeight, LaunchedNetwork, LOOM, waitForHeight, writeNetworkConfig } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'loom-clientflows-'));
const OFFSET = -4000;
const dec = new TextDecoder();
const enc = new TextEncoder();

/** Reads `count` items from `events` (bounded in time), then closes the stream. */
async function take<T>(events: CloseableAsyncIterable<T>, count: number, timeoutMs = 60_000): Promise<T[]> {
  const out: T[] = [];
  const timer = setTimeout(() => events.close(), timeoutMs);
  try {
    for await (const e of events) {
      out.push(e);
      if (out.length >= count) break;
    }
  } finally {
    clearTimeout(timer);
    events.close();
  }
  return out;
}

/**
 * Waits (bounded) until the peer behind `g` has committed block `blockNumber`. Commit status is per
 * peer: a transaction the gateway's peer reports committed may not be on another org's peer yet.
 */
const committedOn = (g: Gateway, blockNumber: number, timeoutMs = 60_000) =>
  waitForHeight(`the peer to commit block ${blockNumber}`, () => gatewayHeight(g), blockNumber + 1, {
    timeoutMs,
    intervalMs: 200,
  });

const config = writeNetworkConfig(join(work, 'net.yaml'), { offset: OFFSET, dataDir: join(work, 'data') });
const launched = new LaunchedNetwork(config, join(work, 'data'));
let net: NetworkConfig;
let gateway: Gateway;

const basic = (g: Gateway = gateway) => g.getNetwork('mychannel').getContract('basic');

beforeAll(async () => {
  net = await loadNetworkConfig(config);
  await launched.up(330_000, ['basic']);
  gateway = await gatewayFor(net, net.organizations[0]!, 'User1');
}, 360_000);

afterAll(async () => {
  gateway?.close();
  await launched.down(60_000);
  rmSync(work, { recursive: true, force: true });
}, 90_000);

describe.skipIf(!existsSync(LOOM))('client SDK flows against a launched network', () => {
  it('offline signing: proposal, transaction and commit request signed outside the SDK', async () => {
    const org = net.organizations[0]!;
    const id = await loadIdentity(net, org, 'User1');
    const offline = connect({
      endpoint: `https://${org.peers[0]!.host}:${org.peers[0]!.port}`,
      identity: { mspId: id.mspId, credentials: enc.encode(id.certPem) },
      tls: { rootCerts: await networkTlsRoots(net) },
      commitStatusOptions: { timeoutMs: 60_000 },
      endorseOptions: { timeoutMs: 60_000 },
    });
    // "Elsewhere": ECDSA P-256 over SHA-256 of the exact bytes, DER-encoded (as an HSM would).
    const signElsewhere = (bytes: Uint8Array) => new Uint8Array(nodeSign('sha256', bytes, id.keyPem));
    try {
      const unsigned = basic(offline).newProposal('CreateAsset', {
        arguments: ['offline-1', 'green', '7', 'Ada', '900'],
      });
      const txId = unsigned.getTransactionId();
      expect(unsigned.getDigest()).toHaveLength(32);
      // Without a signer the SDK cannot endorse an unsigned proposal itself.
      await expect(unsigned.endorse()).rejects.toThrow();

      const proposal = offline.newSignedProposal(unsigned.getBytes(), signElsewhere(unsigned.getBytes()));
      expect(proposal.getTransactionId()).toBe(txId);
      const unsignedTx = await proposal.endorse();
      expect(unsignedTx.getTransactionId()).toBe(txId);
      const tx = offline.newSignedTransaction(unsignedTx.getBytes(), signElsewhere(unsignedTx.getBytes()));
      const submitted = await tx.submit();
      expect(submitted.getTransactionId()).toBe(txId);
      const commit = offline.newSignedCommit(submitted.getBytes(), signElsewhere(submitted.getBytes()));
      const status = await commit.getStatus();
      expect(status).toMatchObject({ transactionId: txId, successful: true, code: 0, codeName: 'VALID' });
      expect(status.blockNumber).toBeGreaterThan(0);

      // Committed: Org2's peer (another gateway, signing in the SDK) reads it once it has the block.
      const org2 = await gatewayFor(net, net.organizations[1]!, 'User1');
      try {
        await committedOn(org2, status.blockNumber);
        const asset = JSON.parse(dec.decode(await basic(org2).evaluateTransaction('ReadAsset', 'offline-1')));
        expect(asset).toMatchObject({ ID: 'offline-1', Color: 'green', Size: 7, Owner: 'Ada', AppraisedValue: 900 });
      } finally {
        org2.close();
      }

      // A signature by a key that is not the creator's is refused at endorsement, with a code.
      const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      const forged = basic(offline).newProposal('CreateAsset', { arguments: ['offline-2', 'red', '1', 'Eve', '1'] });
      const err = await offline
        .newSignedProposal(forged.getBytes(), new Uint8Array(nodeSign('sha256', forged.getBytes(), stranger)))
        .endorse()
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(GatewayError);
      // The endorser's verdict, e.g. SIGNATURE_INVALID, reaches the client as the error code.
      expect((err as GatewayError).code).toMatch(/SIGNATURE/);
      expect((err as GatewayError).message).toMatch(/signature/i);
      expect((err as GatewayError).transactionId).toBe(forged.getTransactionId());
      await expect(
        basic()
          .evaluateTransaction('AssetExists', 'offline-2')
          .then((b) => dec.decode(b)),
      ).resolves.toBe('false');
    } finally {
      offline.close();
    }
  }, 180_000);

  it('chaincode events resume from a checkpoint: no event missed, none repeated', async () => {
    const contract = basic();
    const network = gateway.getNetwork('mychannel');
    const ids = Array.from({ length: 10 }, (_, i) => `ev-${i}`);
    // Created in one go: concurrent submissions, so blocks hold several transactions.
    await Promise.all(ids.map((id) => contract.submitTransaction('CreateAsset', id, 'blue', '5', 'Tom', '300')));
    const start = Number(await network.getLedgerDigest().then((d) => d.digest.height));

    const transferAll = async (owner: string) => {
      const commits = await Promise.all(
        ids.map((id) => contract.submitAsync('TransferAsset', { arguments: [id, owner] })),
      );
      const statuses = await Promise.all(commits.map((c) => c.getStatus()));
      expect(statuses.every((s) => s.successful)).toBe(true);
      return commits.map((c) => c.getTransactionId());
    };
    const first = await transferAll('Max');
    const second = await transferAll('Ana');
    const expected = [...first, ...second];

    // Reads from `start` and stops after 4 events, checkpointing each; then reads the rest.
    const checkpoint = new InMemoryCheckpointer();
    const seen: ChaincodeEvent[] = [];
    const part1 = await take(await network.getChaincodeEvents('basic', { startBlock: start, checkpoint }), 4);
    for (const e of part1) {
      seen.push(e);
      await checkpoint.checkpointChaincodeEvent(e);
    }
    expect(seen).toHaveLength(4);

    // More transfers while disconnected, then resume from the checkpoint (startBlock is ignored).
    const third = await transferAll('Zoe');
    expected.push(...third);
    const rest = await take(
      await network.getChaincodeEvents('basic', { startBlock: 0, checkpoint }),
      expected.length - seen.length,
    );
    seen.push(...rest);

    const got = seen.map((e) => e.transactionId);
    expect(new Set(got).size).toBe(got.length);
    expect(got.sort()).toEqual([...expected].sort());
    expect(seen.every((e) => e.eventName === 'TransferAsset' && e.chaincodeName === 'basic')).toBe(true);
    // In commit order: block numbers never go back.
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.blockNumber).toBeGreaterThanOrEqual(seen[i - 1]!.blockNumber);
    const last = JSON.parse(dec.decode(seen.at(-1)!.payload)) as { Owner: string };
    expect(last.Owner).toBe('Zoe');
  }, 180_000);

  it('chaincode events resume in the middle of a block holding several events', async () => {
    const network = gateway.getNetwork('mychannel');
    const contract = basic();
    const ids = Array.from({ length: 8 }, (_, i) => `mid-${i}`);
    await Promise.all(ids.map((id) => contract.submitTransaction('CreateAsset', id, 'red', '1', 'Tom', '1')));
    const start = Number(await network.getLedgerDigest().then((d) => d.digest.height));
    // Endorsed first, then sent to the orderers together: the 8 envelopes arrive within one batch
    // timeout however slow the endorsements are, so a block holds several of them.
    const endorsed = await Promise.all(
      ids.map((id) => contract.newProposal('TransferAsset', { arguments: [id, 'Kim'] }).endorse()),
    );
    const commits = await Promise.all(endorsed.map((t) => t.submit()));
    await Promise.all(commits.map((c) => c.getStatus()));
    const all = await take(await network.getChaincodeEvents('basic', { startBlock: start }), ids.length);
    const perBlock = new Map<number, number>();
    for (const e of all) perBlock.set(e.blockNumber, (perBlock.get(e.blockNumber) ?? 0) + 1);
    const shared = [...perBlock.entries()].find(([, n]) => n >= 2);
    expect(shared, `8 concurrent transfers all landed in separate blocks: ${[...perBlock]}`).toBeDefined();
    // Checkpoint after the first event of that block, as a crashed app would have.
    const firstOfBlock = all.find((e) => e.blockNumber === shared![0])!;
    const checkpoint = await FileCheckpointer.open(join(work, 'events.checkpoint'));
    await checkpoint.checkpointChaincodeEvent(firstOfBlock);
    // A new checkpointer on the same file: what a restarted application reads.
    const restarted = await FileCheckpointer.open(join(work, 'events.checkpoint'));
    expect(restarted.getTransactionId()).toBe(firstOfBlock.transactionId);
    const after = all.slice(all.indexOf(firstOfBlock) + 1);
    const resumed = await take(await network.getChaincodeEvents('basic', { checkpoint: restarted }), after.length);
    expect(resumed.map((e) => e.transactionId)).toEqual(after.map((e) => e.transactionId));
  }, 180_000);

  it('block events resume from a checkpoint: every block exactly once', async () => {
    const network = gateway.getNetwork('mychannel');
    const contract = basic();
    const start = Number(await network.getLedgerDigest().then((d) => d.digest.height));
    for (let i = 0; i < 3; i++) await contract.submitTransaction('CreateAsset', `blk-${i}`, 'blue', '5', 'Tom', '1');
    const checkpoint = new InMemoryCheckpointer();
    const part1 = await take(await network.getBlockEvents({ startBlock: start, checkpoint }), 2);
    for (const b of part1) await checkpoint.checkpointBlock(b.blockNumber);
    expect(part1.map((b) => b.blockNumber)).toEqual([start, start + 1]);
    expect(checkpoint.getBlockNumber()).toBe(start + 2);

    for (let i = 3; i < 6; i++) await contract.submitTransaction('CreateAsset', `blk-${i}`, 'blue', '5', 'Tom', '1');
    const height = Number(await network.getLedgerDigest().then((d) => d.digest.height));
    const rest = await take(await network.getBlockEvents({ startBlock: 0, checkpoint }), height - (start + 2));
    const numbers = [...part1, ...rest].map((b) => b.blockNumber);
    expect(numbers).toEqual(Array.from({ length: height - start }, (_, i) => start + i));
  }, 180_000);

  it('an endorsement refused by the chaincode names the endorsers and the transaction', async () => {
    const err = await basic()
      .submitTransaction('CreateAsset', 'offline-1', 'blue', '5', 'Tom', '300')
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(EndorseError);
    expect((err as EndorseError).code).toBe('CHAINCODE_ERROR');
    expect((err as EndorseError).message).toContain('already exists');
    expect((err as EndorseError).endorsers.length).toBeGreaterThan(0);
  }, 60_000);
});
