/**
 * TEST FIXTURE — a one-channel, two-organization stand-in for the peer internals behind the gateway
 * plugin: a fixture endorser running a tiny in-memory "basic" chaincode, a fixture orderer that cuts
 * blocks, a fixture committer doing MVCC and duplicate-txId checks, and a ledger accumulator for
 * digests and proofs. The HTTP server, the gateway plugin, TLS, encodings and signatures are real;
 * only these injected dependencies are simplified. Not for use outside tests.
 */
import { createPublicKey } from 'node:crypto';
import {
  type Block,
  buildBlock,
  type Bytes,
  computeProposalHash,
  decodeChaincodeAction,
  decodeChaincodeEvent,
  decodeChaincodeInvocationSpec,
  decodeChaincodeProposalPayload,
  decodeChannelHeader,
  decodeEndorserTransaction,
  decodeEnvelope,
  decodeHeader,
  decodePayload,
  decodeProposal,
  decodeProposalResponsePayload,
  decodeSerializedIdentity,
  decodeSignatureHeader,
  decodeSignedProposal,
  decodeTxReadWriteSet,
  encodeBlock,
  encodeChaincodeAction,
  encodeChaincodeEvent,
  encodeConsenterMetadata,
  encodeProposalResponse,
  encodeProposalResponsePayload,
  encodeSerializedIdentity,
  encodeTxReadWriteSet,
  endorsementSignedBytes,
  fromUtf8,
  GENESIS_PREVIOUS_HASH,
  computeBlockHash,
  type KVRead,
  type KVWrite,
  LoomError,
  parsePolicy,
  type Response,
  TxValidationCode,
  utf8,
  type Version,
  verify,
} from '@loom/common';
import { sha256 } from '@loom/common/crypto/hash';
import type { ChaincodeEventFrame, SignedLedgerDigest } from '@loom/common/gateway/index';
import { encodeLedgerDigest, type KeyProof, type TxProof } from '@loom/common/ledger-proofs';
import { createTestOrg, type TestIdentity, type TestOrg } from '@loom/common/testing/index';
import { createTestTlsCa } from '@loom/common/tls/testing';
import { type EndorserOutcome, type EndorserTarget, gatewayPlugin, planEndorsement } from '@loom/peer/gateway/index';
import { createMemoryAccumulatorStore, LedgerAccumulator } from '@loom/peer/ledger/accumulator';
import Fastify, { type FastifyInstance } from 'fastify';

export const CHANNEL = 'mychannel';
export const CHAINCODE = 'basic';
const POLICY = "AND('Org1MSP.peer','Org2MSP.peer')";

interface StateEntry {
  readonly value: Bytes;
  readonly version: Version;
}

interface CommittedTx {
  readonly blockNum: number;
  readonly txNum: number;
  readonly code: number;
  readonly envelope: Bytes;
}

interface LastWrite {
  readonly version: Version;
  readonly isDelete: boolean;
  readonly value: Bytes;
  readonly txId: string;
}

/** What the fixture chaincode did for one proposal. */
interface Simulation {
  readonly response: Response;
  readonly reads: KVRead[];
  readonly writes: KVWrite[];
  readonly event?: { name: string; payload: Bytes };
}

export interface FixtureNetwork {
  readonly url: string;
  readonly tlsRootPem: string;
  readonly org1: TestOrg;
  readonly org2: TestOrg;
  /** Endorsers of these organizations answer with this error instead of endorsing. */
  readonly failingOrgs: Map<string, { code: string; message: string }>;
  /** Endorsers of these organizations sign a different result than the others. */
  readonly divergentOrgs: Set<string>;
  /** Before ordering the next envelope, commit a write to every key it read (forces MVCC_READ_CONFLICT). */
  conflictOnNextBroadcast: boolean;
  /** While held, broadcast envelopes queue up; release cuts them into one block. */
  holdBlocks(): void;
  releaseBlocks(): Promise<void>;
  readonly blocks: readonly Block[];
  /** Envelopes the fixture orderer received, in order. */
  readonly broadcasts: readonly Bytes[];
  close(): Promise<void>;
}

const endpointOf = (mspId: string) => `https://peer0.${mspId.replace(/MSP$/, '').toLowerCase()}.example.com:7051`;

export async function startFixtureNetwork(): Promise<FixtureNetwork> {
  const [org1, org2, tlsCa] = await Promise.all([
    createTestOrg('Org1MSP'),
    createTestOrg('Org2MSP'),
    createTestTlsCa('Org1MSP'),
  ]);
  const serverTls = await tlsCa.issue({ cn: 'peer0.org1.example.com' });
  const peers = new Map<string, TestIdentity>([
    ['Org1MSP', org1.peer],
    ['Org2MSP', org2.peer],
  ]);
  const policy = parsePolicy(POLICY);

  const state = new Map<string, StateEntry>();
  const lastWrites = new Map<string, LastWrite>();
  const committed = new Map<string, CommittedTx>();
  const blocks: Block[] = [];
  const broadcasts: Bytes[] = [];
  const blockListeners = new Set<() => void>();
  const accumulator = await LedgerAccumulator.open(createMemoryAccumulatorStore(), {
    channelId: CHANNEL,
    hash: sha256,
    height: 0,
  });
  let pending: Bytes[] = [];
  let held = false;
  let cutting: Promise<void> = Promise.resolve();

  // ---- fixture chaincode -------------------------------------------------------------------

  const simulate = (args: Bytes[]): Simulation => {
    const fn = fromUtf8(args[0] ?? new Uint8Array());
    const a = args.slice(1).map(fromUtf8);
    const read = (key: string): KVRead => ({ key, version: state.get(key)?.version ?? null });
    const ok = (payload: string): Response => ({ status: 200, message: '', payload: utf8(payload) });
    switch (fn) {
      case 'put':
        return {
          response: ok(a[1] ?? ''),
          reads: [],
          writes: [{ key: a[0] ?? '', isDelete: false, value: utf8(a[1] ?? '') }],
          event: { name: 'put', payload: utf8(a[0] ?? '') },
        };
      case 'get': {
        const e = state.get(a[0] ?? '');
        if (!e)
          return {
            response: { status: 404, message: `asset ${a[0]} does not exist`, payload: new Uint8Array() },
            reads: [],
            writes: [],
          };
        return { response: { status: 200, message: '', payload: e.value }, reads: [read(a[0]!)], writes: [] };
      }
      case 'inc': {
        const key = a[0] ?? '';
        const next = String(Number(fromUtf8(state.get(key)?.value ?? utf8('0'))) + 1);
        return { response: ok(next), reads: [read(key)], writes: [{ key, isDelete: false, value: utf8(next) }] };
      }
      default:
        return {
          response: { status: 500, message: `unknown function: ${fn}`, payload: new Uint8Array() },
          reads: [],
          writes: [],
        };
    }
  };

  // ---- fixture endorser --------------------------------------------------------------------

  const endorseAt = async (target: EndorserTarget, signedProposal: Bytes): Promise<EndorserOutcome> => {
    const failing = failingOrgs.get(target.mspId);
    if (failing) return { ...target, ok: false, ...failing };
    const sp = decodeSignedProposal(signedProposal);
    const proposal = decodeProposal(sp.proposalBytes);
    const header = decodeHeader(proposal.header);
    const ch = decodeChannelHeader(header.channelHeader);
    const creator = decodeSerializedIdentity(decodeSignatureHeader(header.signatureHeader).creator);
    if (!verify(createPublicKey(fromUtf8(creator.idBytes)), sp.proposalBytes, sp.signature)) {
      return { ...target, ok: false, code: 'BAD_CREATOR_SIGNATURE', message: 'proposal not signed by its creator' };
    }
    const input = decodeChaincodeProposalPayload(proposal.payload).input;
    const spec = decodeChaincodeInvocationSpec(input);
    if (ch.channelId !== CHANNEL) return { ...target, ok: false, code: 'CHANNEL_NOT_FOUND', message: ch.channelId };
    if (spec.chaincodeName !== CHAINCODE) {
      return {
        ...target,
        ok: false,
        code: 'CHAINCODE_NOT_FOUND',
        message: `chaincode ${spec.chaincodeName} is not installed`,
      };
    }
    const sim = simulate(spec.args);
    const peer = peers.get(target.mspId)!;
    if (sim.response.status >= 400) {
      return {
        ...target,
        ok: true,
        proposalResponse: encodeProposalResponse({
          version: 1,
          timestamp: Date.now(),
          response: sim.response,
          payload: new Uint8Array(),
          endorsement: null,
        }),
      };
    }
    const response = divergentOrgs.has(target.mspId)
      ? { ...sim.response, payload: utf8(`${fromUtf8(sim.response.payload)}!`) }
      : sim.response;
    const payload = encodeProposalResponsePayload({
      proposalHash: computeProposalHash(proposal.header, input, sha256),
      extension: encodeChaincodeAction({
        results: encodeTxReadWriteSet({
          nsRwsets: [
            {
              namespace: CHAINCODE,
              rwset: { reads: sim.reads, rangeQueriesInfo: [], writes: sim.writes, metadataWrites: [] },
              collectionHashedRwsets: [],
            },
          ],
        }),
        events: sim.event
          ? encodeChaincodeEvent({
              chaincodeId: CHAINCODE,
              txId: ch.txId,
              eventName: sim.event.name,
              payload: sim.event.payload,
            })
          : new Uint8Array(),
        response,
        chaincodeName: CHAINCODE,
        chaincodeVersion: '1.0',
      }),
    });
    const endorser = encodeSerializedIdentity(peer.serialized);
    const signature = await peer.signer.sign(endorsementSignedBytes(payload, endorser));
    return {
      ...target,
      ok: true,
      proposalResponse: encodeProposalResponse({
        version: 1,
        timestamp: Date.now(),
        response,
        payload,
        endorsement: { endorser, signature },
      }),
    };
  };

  // ---- fixture orderer + committer ---------------------------------------------------------

  const notifyBlock = () => {
    for (const l of [...blockListeners]) l();
  };

  const appendBlock = async (data: Bytes[], validate: (env: Bytes, txNum: number, blockNum: number) => number) => {
    const number = blocks.length;
    const prev = number === 0 ? GENESIS_PREVIOUS_HASH : computeBlockHash(blocks[number - 1]!, sha256);
    const block = buildBlock(number, prev, data, encodeConsenterMetadata({ lastConfig: 0, raftIndex: number }), sha256);
    const codes = data.map((env, i) => validate(env, i, number));
    block.metadata.txValidationCodes = Uint8Array.from(codes);
    await accumulator.appendBlock(
      number,
      data.map((env, i) => ({ envelopeHash: sha256(env), validationCode: codes[i]! })),
    );
    blocks.push(block);
    notifyBlock();
  };

  const validateAndApply = (env: Bytes, txNum: number, blockNum: number): number => {
    const payload = decodePayload(decodeEnvelope(env).payload);
    const ch = decodeChannelHeader(decodeHeader(payload.header).channelHeader);
    if (committed.has(ch.txId)) return TxValidationCode.DUPLICATE_TXID;
    const etx = decodeEndorserTransaction(payload.data);
    const action = decodeChaincodeAction(decodeProposalResponsePayload(etx.proposalResponsePayload).extension);
    const rwset = decodeTxReadWriteSet(action.results);
    let code: number = TxValidationCode.VALID;
    for (const ns of rwset.nsRwsets) {
      for (const r of ns.rwset.reads) {
        const cur = state.get(r.key)?.version ?? null;
        const same =
          cur === null || r.version === null
            ? cur === r.version
            : cur.blockNum === r.version.blockNum && cur.txNum === r.version.txNum;
        if (!same) code = TxValidationCode.MVCC_READ_CONFLICT;
      }
    }
    if (code === TxValidationCode.VALID) {
      for (const ns of rwset.nsRwsets) {
        for (const w of ns.rwset.writes) {
          const version = { blockNum, txNum };
          if (w.isDelete) state.delete(w.key);
          else state.set(w.key, { value: w.value, version });
          lastWrites.set(w.key, { version, isDelete: w.isDelete, value: w.value, txId: ch.txId });
        }
      }
    }
    committed.set(ch.txId, { blockNum, txNum, code, envelope: env });
    return code;
  };

  const cut = () => {
    const batch = pending;
    pending = [];
    if (batch.length === 0) return cutting;
    cutting = cutting.then(() => appendBlock(batch, validateAndApply));
    return cutting;
  };

  /** Someone else's transaction got there first: bump the version of every key `env` read. */
  const commitConflictingWrite = async (env: Bytes) => {
    const payload = decodePayload(decodeEnvelope(env).payload);
    const etx = decodeEndorserTransaction(payload.data);
    const action = decodeChaincodeAction(decodeProposalResponsePayload(etx.proposalResponsePayload).extension);
    const keys = decodeTxReadWriteSet(action.results).nsRwsets.flatMap((ns) => ns.rwset.reads.map((r) => r.key));
    await cutting;
    cutting = cutting.then(() =>
      appendBlock([], () => TxValidationCode.VALID).then(() => {
        for (const key of keys) {
          const old = state.get(key);
          state.set(key, { value: old?.value ?? utf8('0'), version: { blockNum: blocks.length - 1, txNum: 0 } });
        }
      }),
    );
    await cutting;
  };

  const waitForBlock = (signal: AbortSignal, timeoutMs = 60_000) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        blockListeners.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      blockListeners.add(done);
      signal.addEventListener('abort', done, { once: true });
    });

  const requireChannel = (channel: string) => {
    if (channel !== CHANNEL) {
      throw new LoomError('CHANNEL_NOT_FOUND', `channel ${channel} does not exist`, { httpStatus: 404 });
    }
  };

  const txProofOf = async (txId: string): Promise<TxProof> => {
    const tx = committed.get(txId);
    if (!tx) throw new LoomError('TX_NOT_FOUND', `transaction ${txId} not in the ledger`, { httpStatus: 404 });
    const leafIndex = await accumulator.leafIndex(tx.blockNum, tx.txNum);
    return {
      channelId: CHANNEL,
      txId,
      blockNum: tx.blockNum,
      txNum: tx.txNum,
      validationCode: tx.code,
      envelope: tx.envelope,
      leafIndex,
      treeSize: accumulator.txCount,
      auditPath: await accumulator.auditPath(leafIndex, accumulator.txCount),
    };
  };

  const failingOrgs = new Map<string, { code: string; message: string }>();
  const divergentOrgs = new Set<string>();

  const app: FastifyInstance = Fastify({
    https: { key: serverTls.keyPem, cert: serverTls.certPem },
    logger: false,
  }) as never;
  await app.register(gatewayPlugin, {
    maxCommitWaitMs: 10_000,
    dependencies: {
      localMspId: 'Org1MSP',
      planEndorsers: (channel, _chaincode, options) => {
        requireChannel(channel);
        const all = [...peers.keys()].map((mspId) => ({ mspId, endpoint: endpointOf(mspId) }));
        if (options.organizations) return all.filter((p) => options.organizations!.includes(p.mspId));
        return planEndorsement({ policy, peers: all, localMspId: 'Org1MSP' });
      },
      endorse: (signedProposal, targets) => Promise.all(targets.map((t) => endorseAt(t, signedProposal))),
      evaluate: (signedProposal, organizations) => {
        const mspId = organizations[0] ?? 'Org1MSP';
        return endorseAt({ mspId, endpoint: endpointOf(mspId) }, signedProposal);
      },
      broadcast: async (envelope) => {
        broadcasts.push(envelope);
        if (network.conflictOnNextBroadcast) {
          network.conflictOnNextBroadcast = false;
          await commitConflictingWrite(envelope);
        }
        pending.push(envelope);
        // Acknowledged once queued for ordering; the block is cut a moment later, as a batch timeout would.
        if (!held) setTimeout(() => void cut(), 5);
      },
      commitStatus: async (channel, txId, timeoutMs, signal) => {
        requireChannel(channel);
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const tx = committed.get(txId);
          if (tx) return { blockNumber: tx.blockNum, validationCode: tx.code };
          const left = deadline - Date.now();
          if (left <= 0 || signal.aborted) return undefined;
          await waitForBlock(signal, left);
        }
      },
      blockEvents: (channel, startBlock, signal) => {
        requireChannel(channel);
        return (async function* () {
          let n = startBlock ?? blocks.length;
          while (!signal.aborted) {
            while (n < blocks.length) yield encodeBlock(blocks[n++]!);
            await waitForBlock(signal);
          }
        })();
      },
      chaincodeEvents: (channel, chaincode, startBlock, signal) => {
        requireChannel(channel);
        return (async function* (): AsyncGenerator<ChaincodeEventFrame> {
          let n = startBlock ?? blocks.length;
          while (!signal.aborted) {
            while (n < blocks.length) {
              const block = blocks[n]!;
              for (const [txNum, env] of block.data.entries()) {
                if (block.metadata.txValidationCodes[txNum] !== TxValidationCode.VALID) continue;
                const payload = decodePayload(decodeEnvelope(env).payload);
                const ch = decodeChannelHeader(decodeHeader(payload.header).channelHeader);
                const etx = decodeEndorserTransaction(payload.data);
                const action = decodeChaincodeAction(
                  decodeProposalResponsePayload(etx.proposalResponsePayload).extension,
                );
                if (action.events.length === 0) continue;
                const ev = decodeChaincodeEvent(action.events);
                if (ev.chaincodeId !== chaincode) continue;
                yield {
                  blockNumber: n,
                  txNum,
                  txId: ch.txId,
                  chaincodeId: ev.chaincodeId,
                  eventName: ev.eventName,
                  payload: ev.payload,
                };
              }
              n++;
            }
            await waitForBlock(signal);
          }
        })();
      },
      digest: async (channel): Promise<SignedLedgerDigest> => {
        requireChannel(channel);
        const digest = accumulator.digest();
        return {
          digest,
          signature: await org1.peer.signer.sign(encodeLedgerDigest(digest)),
          signer: encodeSerializedIdentity(org1.peer.serialized),
        };
      },
      txProof: async (channel, txId) => {
        requireChannel(channel);
        return txProofOf(txId);
      },
      keyProof: async (channel, namespace, key): Promise<KeyProof> => {
        requireChannel(channel);
        const w = lastWrites.get(key);
        if (namespace !== CHAINCODE || !w)
          throw new LoomError('KEY_NOT_FOUND', `no write of ${key}`, { httpStatus: 404 });
        return {
          namespace,
          key,
          version: w.version,
          isDelete: w.isDelete,
          valueHash: w.isDelete ? new Uint8Array() : sha256(w.value),
          tx: await txProofOf(w.txId),
        };
      },
    },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const network: FixtureNetwork = {
    url: `https://127.0.0.1:${port}`,
    tlsRootPem: tlsCa.certPem,
    org1,
    org2,
    failingOrgs,
    divergentOrgs,
    conflictOnNextBroadcast: false,
    holdBlocks: () => {
      held = true;
    },
    releaseBlocks: async () => {
      held = false;
      await cut();
    },
    blocks,
    broadcasts,
    close: async () => {
      for (const l of [...blockListeners]) l();
      await app.close();
    },
  };
  return network;
}
