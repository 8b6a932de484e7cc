/**
 * The client SDK against a real fastify server running the gateway plugin over TLS, with the peer
 * internals replaced by the fixture network (fixture-network.ts). Signatures are real: the test CA's
 * identities, the SDK's noble signer, and node:crypto for offline signing.
 */
import { sign as nodeSign } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSerializedIdentity, fromUtf8, utf8 } from '@loom/common';
import { commitStatusRequestCodec } from '@loom/common/gateway/index';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ChaincodeEvent,
  CommitError,
  CommitStatusError,
  type Contract,
  connect,
  EndorseError,
  EvaluateError,
  type Gateway,
  InMemoryCheckpointer,
  type Network,
  retryOnMvccConflict,
  SubmitError,
  signers,
} from '../src/index.js';
import { fileCheckpointer } from '../src/file-checkpointer.js';
import { CHAINCODE, CHANNEL, type FixtureNetwork, startFixtureNetwork } from './fixture-network.js';

let net: FixtureNetwork;
let gateway: Gateway;
let network: Network;
let contract: Contract;

const text = (b: Uint8Array) => fromUtf8(b);

function connectAs(fixture: FixtureNetwork, withSigner = true): Gateway {
  return connect({
    endpoint: fixture.url,
    identity: { mspId: 'Org1MSP', credentials: utf8(fixture.org1.client.certPem) },
    ...(withSigner ? { signer: signers.newPrivateKeySigner(fixture.org1.client.keyPem) } : {}),
    tls: { rootCerts: fixture.tlsRootPem },
    commitStatusOptions: { timeoutMs: 10_000 },
  });
}

/** Takes `n` items from an event stream, failing after `ms` rather than hanging the suite. */
async function take<T>(iter: AsyncIterable<T>, n: number, ms = 10_000): Promise<T[]> {
  const out: T[] = [];
  const it = iter[Symbol.asyncIterator]();
  const deadline = Date.now() + ms;
  while (out.length < n) {
    const left = deadline - Date.now();
    const next = await Promise.race([
      it.next(),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`timed out after ${out.length}/${n}`)), left),
      ),
    ]);
    if (next.done) break;
    out.push(next.value);
  }
  return out;
}

beforeAll(async () => {
  net = await startFixtureNetwork();
  gateway = connectAs(net);
  network = gateway.getNetwork(CHANNEL);
  contract = network.getContract(CHAINCODE);
});

afterAll(async () => {
  gateway?.close();
  await net?.close();
});

describe('submit and evaluate', () => {
  it('submits a transaction, waits for its commit, and reads the result back', async () => {
    const result = await contract.submitTransaction('put', 'asset1', 'blue');
    expect(text(result)).toBe('blue');
    expect(text(await contract.evaluateTransaction('get', 'asset1'))).toBe('blue');
  });

  it('submitAsync answers once ordered; getStatus gives block number and VALID', async () => {
    const submitted = await contract.submitAsync('put', { arguments: ['asset2', 'red'] });
    expect(text(submitted.getResult())).toBe('red');
    const txId = submitted.getTransactionId();
    expect(txId).toMatch(/^[0-9a-f]{64}$/);
    const status = await submitted.getStatus();
    expect(status).toMatchObject({ transactionId: txId, code: 0, codeName: 'VALID', successful: true });
    expect(net.blocks[status.blockNumber]).toBeDefined();
    // The envelope in the block is signed by the client, and endorsed by both organizations.
    expect(net.broadcasts.length).toBeGreaterThan(0);
  });

  it('evaluate does not order anything', async () => {
    const before = net.broadcasts.length;
    expect(text(await contract.evaluate('get', { arguments: ['asset1'] }))).toBe('blue');
    expect(net.broadcasts.length).toBe(before);
  });
});

describe('offline signing', () => {
  it('signs proposal, transaction and commit request elsewhere with node:crypto', async () => {
    const offline = connectAs(net, false);
    try {
      const offlineContract = offline.getNetwork(CHANNEL).getContract(CHAINCODE);
      const key = net.org1.client.privateKey;
      const unsigned = offlineContract.newProposal('put', { arguments: ['offline1', 'green'] });
      expect(unsigned.getDigest()).toHaveLength(32);
      // node:crypto hashes and signs the bytes; its signature may be high-S, which the SDK normalizes.
      const proposal = offline.newSignedProposal(unsigned.getBytes(), nodeSign('sha256', unsigned.getBytes(), key));
      expect(proposal.getTransactionId()).toBe(unsigned.getTransactionId());
      const unsignedTx = await proposal.endorse();
      expect(text(unsignedTx.getResult())).toBe('green');
      const tx = offline.newSignedTransaction(unsignedTx.getBytes(), nodeSign('sha256', unsignedTx.getBytes(), key));
      expect(text(tx.getResult())).toBe('green');
      const submitted = await tx.submit();
      // Without a signer the commit-status request must be signed offline too.
      await expect(submitted.getStatus()).rejects.toMatchObject({ name: 'CommitStatusError', code: 'NO_SIGNER' });
      const commit = offline.newSignedCommit(submitted.getBytes(), nodeSign('sha256', submitted.getBytes(), key));
      const status = await commit.getStatus();
      expect(status).toMatchObject({ successful: true, transactionId: unsigned.getTransactionId() });
      expect(text(await contract.evaluateTransaction('get', 'offline1'))).toBe('green');
    } finally {
      offline.close();
    }
  });

  it('rejects a transaction signed by someone other than its creator', async () => {
    const proposal = contract.newProposal('put', { arguments: ['forged', 'x'] });
    const tx = await proposal.endorse();
    const forged = gateway.newSignedTransaction(
      tx.getBytes(),
      nodeSign('sha256', tx.getBytes(), net.org2.client.privateKey),
    );
    const err = await forged.submit().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SubmitError);
    expect(err).toMatchObject({ code: 'GATEWAY_BAD_SIGNATURE', transactionId: tx.getTransactionId() });
  });
});

describe('chaincode events', () => {
  it('resumes from a checkpoint with no gap and no duplicate, inside a block too', async () => {
    const start = net.blocks.length;
    // Two transactions in one block, so the checkpoint falls inside a block.
    net.holdBlocks();
    const a = await contract.submitAsync('put', { arguments: ['ev-a', '1'] });
    const b = await contract.submitAsync('put', { arguments: ['ev-b', '2'] });
    await net.releaseBlocks();
    const [sa, sb] = await Promise.all([a.getStatus(), b.getStatus()]);
    expect(sa.blockNumber).toBe(sb.blockNumber);
    await contract.submitTransaction('put', 'ev-c', '3');

    const checkpoint = new InMemoryCheckpointer();
    const first = await network.getChaincodeEvents(CHAINCODE, { startBlock: start, checkpoint });
    const seen: ChaincodeEvent[] = [];
    // Process only the first event, then "crash".
    const [e1] = await take(first, 1);
    seen.push(e1!);
    await checkpoint.checkpointChaincodeEvent(e1!);
    first.close();
    expect(checkpoint.getBlockNumber()).toBe(sa.blockNumber);

    await contract.submitTransaction('put', 'ev-d', '4');
    const resumed = await network.getChaincodeEvents(CHAINCODE, { startBlock: 0, checkpoint });
    for (const e of await take(resumed, 3)) {
      seen.push(e);
      await checkpoint.checkpointChaincodeEvent(e);
    }
    resumed.close();
    expect(seen.map((e) => text(e.payload))).toEqual(['ev-a', 'ev-b', 'ev-c', 'ev-d']);
    expect(seen.map((e) => e.transactionId).slice(0, 2)).toEqual([a.getTransactionId(), b.getTransactionId()]);
    expect(new Set(seen.map((e) => e.transactionId)).size).toBe(4);
  });

  it('a file checkpointer carries the position across a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loom-client-cp-'));
    try {
      const file = join(dir, 'checkpoint.json');
      const startBlock = net.blocks.length;
      await contract.submitTransaction('put', 'file-a', '1');
      await contract.submitTransaction('put', 'file-b', '2');
      const cp1 = await fileCheckpointer(file);
      const s1 = await network.getChaincodeEvents(CHAINCODE, { startBlock, checkpoint: cp1 });
      const [x] = await take(s1, 1);
      await cp1.checkpointChaincodeEvent(x!);
      s1.close();

      const cp2 = await fileCheckpointer(file); // the restarted application
      expect(cp2.getBlockNumber()).toBe(x!.blockNumber);
      expect(cp2.getTransactionId()).toBe(x!.transactionId);
      const s2 = await network.getChaincodeEvents(CHAINCODE, { checkpoint: cp2 });
      const [y] = await take(s2, 1);
      s2.close();
      expect([text(x!.payload), text(y!.payload)]).toEqual(['file-a', 'file-b']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('block events deliver committed blocks with validation codes from a start block', async () => {
    const start = net.blocks.length;
    const submitted = await contract.submitAsync('put', { arguments: ['blk', 'x'] });
    const status = await submitted.getStatus();
    const checkpoint = new InMemoryCheckpointer();
    await checkpoint.checkpointBlock(start - 1);
    const events = await network.getBlockEvents({ checkpoint });
    const got = await take(events, status.blockNumber - start + 1);
    events.close();
    expect(got.map((b) => b.blockNumber)).toEqual(
      Array.from({ length: status.blockNumber - start + 1 }, (_, i) => start + i),
    );
    expect(Array.from(got.at(-1)!.block.metadata.txValidationCodes)).toEqual([0]);
  });
});

describe('MVCC conflicts', () => {
  it('surfaces a read conflict as CommitError MVCC_READ_CONFLICT', async () => {
    await contract.submitTransaction('put', 'counter', '0');
    net.conflictOnNextBroadcast = true;
    const err = await contract.submitTransaction('inc', 'counter').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommitError);
    expect(err).toMatchObject({ code: 'MVCC_READ_CONFLICT', validationCode: 11 });
    expect((err as CommitError).transactionId).toMatch(/^[0-9a-f]{64}$/);
  });

  it('retryOnMvccConflict runs the transaction again and succeeds on the second attempt', async () => {
    await contract.submitTransaction('put', 'counter2', '41');
    net.conflictOnNextBroadcast = true;
    const attempts: number[] = [];
    const result = await retryOnMvccConflict(
      async (attempt) => {
        attempts.push(attempt);
        return contract.submitTransaction('inc', 'counter2');
      },
      { attempts: 3, backoff: 10 },
    );
    expect(attempts).toEqual([1, 2]);
    expect(text(result)).toBe('42');
  });

  it('does not retry other failures', async () => {
    let calls = 0;
    await expect(
      retryOnMvccConflict(async () => {
        calls++;
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(calls).toBe(1);
  });
});

describe('endorsement errors', () => {
  it('reports a failing endorser with per-endorser details', async () => {
    net.failingOrgs.set('Org2MSP', { code: 'ENDORSER_UNAVAILABLE', message: 'peer0.org2 is down' });
    try {
      const err = await contract.submitTransaction('put', 'x', 'y').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EndorseError);
      const e = err as EndorseError;
      expect(e.code).toBe('ENDORSER_UNAVAILABLE');
      expect(e.transactionId).toMatch(/^[0-9a-f]{64}$/);
      expect(e.endorsers).toEqual([
        {
          mspId: 'Org2MSP',
          endpoint: 'https://peer0.org2.example.com:7051',
          code: 'ENDORSER_UNAVAILABLE',
          message: 'peer0.org2 is down',
        },
      ]);
      expect(e.details.endorsers).toEqual(e.endorsers);
    } finally {
      net.failingOrgs.clear();
    }
  });

  it('refuses endorsements that disagree (ENDORSEMENT_MISMATCH)', async () => {
    net.divergentOrgs.add('Org2MSP');
    const before = net.broadcasts.length;
    try {
      const err = await contract.submitTransaction('put', 'mm', 'v').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EndorseError);
      expect(err).toMatchObject({ code: 'ENDORSEMENT_MISMATCH' });
      expect((err as EndorseError).endorsers.map((d) => d.mspId).sort()).toEqual(['Org1MSP', 'Org2MSP']);
      expect(net.broadcasts.length).toBe(before);
    } finally {
      net.divergentOrgs.clear();
    }
  });

  it('propagates an unknown chaincode as CHAINCODE_NOT_FOUND', async () => {
    const missing = network.getContract('nosuchcc');
    const endorse = await missing.submitTransaction('put', 'a', 'b').catch((e: unknown) => e);
    expect(endorse).toBeInstanceOf(EndorseError);
    expect(endorse).toMatchObject({ code: 'CHAINCODE_NOT_FOUND', httpStatus: 404 });
    expect((endorse as EndorseError).endorsers).toHaveLength(2);
    const evaluate = await missing.evaluateTransaction('get', 'a').catch((e: unknown) => e);
    expect(evaluate).toBeInstanceOf(EvaluateError);
    expect(evaluate).toMatchObject({ code: 'CHAINCODE_NOT_FOUND' });
  });

  it('propagates an unknown function as CHAINCODE_ERROR with the chaincode message', async () => {
    const err = await contract.evaluateTransaction('nosuchfn').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EvaluateError);
    expect(err).toMatchObject({ code: 'CHAINCODE_ERROR' });
    expect((err as EvaluateError).endorsers[0]).toMatchObject({
      mspId: 'Org1MSP',
      code: 'CHAINCODE_ERROR',
      message: '500: unknown function: nosuchfn',
    });
    const submit = await contract.submitTransaction('nosuchfn').catch((e: unknown) => e);
    expect(submit).toBeInstanceOf(EndorseError);
    expect(submit).toMatchObject({ code: 'CHAINCODE_ERROR' });
  });

  it('an unknown channel fails endorsement and event requests with the gateway code', async () => {
    const other = gateway.getNetwork('nochannel');
    const err = await other
      .getContract(CHAINCODE)
      .submitTransaction('put', 'a', 'b')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EndorseError);
    expect(err).toMatchObject({ code: 'CHANNEL_NOT_FOUND' });
    await expect(other.getChaincodeEvents(CHAINCODE, { startBlock: 0 })).rejects.toMatchObject({
      name: 'GatewayError',
      code: 'CHANNEL_NOT_FOUND',
      httpStatus: 404,
    });
  });
});

describe('commit status', () => {
  it('gives up after the commit-status timeout with CommitStatusError COMMIT_STATUS_TIMEOUT', async () => {
    const bytes = commitStatusRequestCodec.encode({
      channel: CHANNEL,
      creator: encodeSerializedIdentity(net.org1.client.serialized),
      timestamp: Date.now(),
      txId: 'f'.repeat(64),
      timeoutMs: 300,
    });
    const commit = gateway.newSignedCommit(bytes, nodeSign('sha256', bytes, net.org1.client.privateKey));
    const err = await commit.getStatus().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommitStatusError);
    expect(err).toMatchObject({ code: 'COMMIT_STATUS_TIMEOUT', transactionId: 'f'.repeat(64), httpStatus: 504 });
  });
});

describe('ledger proofs', () => {
  it('verifies a transaction proof and a key proof against the signed digest', async () => {
    const submitted = await contract.submitAsync('put', { arguments: ['proven', 'gold'] });
    await submitted.getStatus();
    const digest = await network.getLedgerDigest();
    const peerCert = net.org1.peer.certPem;

    const txProof = await network.getTransactionProof(submitted.getTransactionId());
    expect(network.verifyProof(txProof, digest, peerCert)).toBe(true);
    const keyProof = await network.getKeyProof(CHAINCODE, 'proven');
    expect(network.verifyProof(keyProof, digest, peerCert)).toBe(true);

    // Tampered envelope, digest, value hash, or the wrong signer: each fails.
    const envelope = Uint8Array.from(txProof.envelope);
    envelope[envelope.length - 5]! ^= 1;
    expect(network.verifyProof({ ...txProof, envelope }, digest, peerCert)).toBe(false);
    const root = Uint8Array.from(digest.digest.root);
    root[0]! ^= 1;
    expect(network.verifyProof(txProof, { ...digest, digest: { ...digest.digest, root } }, peerCert)).toBe(false);
    const valueHash = Uint8Array.from(keyProof.valueHash);
    valueHash[0]! ^= 1;
    expect(network.verifyProof({ ...keyProof, valueHash }, digest, peerCert)).toBe(false);
    expect(network.verifyProof(txProof, digest, net.org2.peer.certPem)).toBe(false);
  });
});
