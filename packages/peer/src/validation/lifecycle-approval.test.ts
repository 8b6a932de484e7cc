/**
 * `_lifecycle` approvals at validation (#6): crafted transactions, really signed (ECDSA, X.509 test
 * orgs), through `validateBlock` with the channel's LifecycleEndorsement a MAJORITY of three orgs.
 * An approval key `approvals/<name>/<sequence>/<mspId>` is valid when a peer of `<mspId>` endorsed it,
 * alone; it is refused when only other orgs' peers did (even a majority), and the commit's
 * `definitions/<name>` still needs LifecycleEndorsement.
 */
import { randomBytes } from 'node:crypto';
import {
  type Bytes,
  buildBlock,
  buildTransactionPayload,
  computeProposalHash,
  computeTxId,
  encodeChaincodeAction,
  encodeChaincodeInvocationSpec,
  encodeChannelHeader,
  encodeConsenterMetadata,
  encodeEnvelope,
  encodeHeader,
  encodeProposalResponsePayload,
  encodeSerializedIdentity,
  encodeSignatureHeader,
  encodeTxReadWriteSet,
  endorsementSignedBytes,
  GENESIS_PREVIOUS_HASH,
  HeaderType,
  txValidationCodeName,
  utf8,
  type Version,
} from '@loom/common';
import { sha256 } from '@loom/common/crypto/hash';
import { MspManager } from '@loom/common/msp/msp-manager';
import { ChannelPolicies } from '@loom/common/policy/index';
import { createTestOrg, type TestIdentity, type TestOrg } from '@loom/common/testing/index';
import { beforeAll, describe, expect, it } from 'vitest';
import { createEndorsementPolicySource } from './policies.js';
import { createSignatureVerifier } from './signature-verifier.js';
import type { StateReader } from './state-reader.js';
import type { BlockValidationContext } from './types.js';
import { validateBlock } from './validate-block.js';

const CHANNEL = 'ch1';
const LC = '_lifecycle';

const emptyState: StateReader = {
  getVersion: async () => undefined,
  getMetadata: async () => undefined,
  async *rangeScan(): AsyncGenerator<{ key: string; version: Version }> {},
  isTxIdCommitted: async () => false,
};

let orgs: Record<string, TestOrg>;
let ctx: BlockValidationContext;

beforeAll(async () => {
  const [o1, o2, o3] = await Promise.all(['Org1MSP', 'Org2MSP', 'Org3MSP'].map((m) => createTestOrg(m)));
  orgs = { Org1MSP: o1!, Org2MSP: o2!, Org3MSP: o3! };
  const channelPolicies = new ChannelPolicies({
    orgs: Object.fromEntries(Object.keys(orgs).map((m) => [m, { Endorsement: `'${m}.peer'` }])),
    channel: { LifecycleEndorsement: 'MAJORITY Endorsement' },
  });
  ctx = {
    channelId: CHANNEL,
    stateReader: emptyState,
    msp: new MspManager(Object.values(orgs).map((o) => o.mspConfig())),
    // `_lifecycle`'s own policy is LifecycleEndorsement, as the peer's registry gives it.
    policies: createEndorsementPolicySource(channelPolicies, {
      chaincode: (ns) => (ns === LC ? 'MAJORITY Endorsement' : undefined),
    }),
    signatureVerifier: createSignatureVerifier({ poolSize: 0 }),
    hash: sha256,
  };
}, 60_000);

/** A `_lifecycle` transaction by `creator` writing `keys`, endorsed (really signed) by `endorsers`. */
async function lifecycleTx(creator: TestIdentity, endorsers: TestIdentity[], keys: string[]): Promise<Bytes> {
  const creatorBytes = encodeSerializedIdentity(creator.serialized);
  const nonce = new Uint8Array(randomBytes(24));
  const headerBytes = encodeHeader({
    channelHeader: encodeChannelHeader({
      type: HeaderType.ENDORSER_TRANSACTION,
      version: 1,
      channelId: CHANNEL,
      txId: computeTxId(nonce, creatorBytes, sha256),
      timestamp: 1_700_000_000_000,
      extension: utf8(LC),
    }),
    signatureHeader: encodeSignatureHeader({ creator: creatorBytes, nonce }),
  });
  const inputBytes = encodeChaincodeInvocationSpec({
    chaincodeName: LC,
    args: [utf8('ApproveChaincodeDefinitionForMyOrg'), utf8('{}')],
    isInit: false,
  });
  const rwset = {
    nsRwsets: [
      {
        namespace: LC,
        rwset: {
          reads: [{ key: 'definitions/basic', version: null }],
          rangeQueriesInfo: [],
          writes: keys.map((key) => ({ key, isDelete: false, value: utf8('{"crafted":true}') })),
          metadataWrites: [],
        },
        collectionHashedRwsets: [],
      },
    ],
  };
  const prp = encodeProposalResponsePayload({
    proposalHash: computeProposalHash(headerBytes, inputBytes, sha256),
    extension: encodeChaincodeAction({
      results: encodeTxReadWriteSet(rwset),
      events: new Uint8Array(0),
      response: { status: 200, message: '', payload: new Uint8Array(0) },
      chaincodeName: LC,
      chaincodeVersion: '1',
    }),
  });
  const endorsements = await Promise.all(
    endorsers.map(async (e) => {
      const endorser = encodeSerializedIdentity(e.serialized);
      return { endorser, signature: await e.signer.sign(endorsementSignedBytes(prp, endorser)) };
    }),
  );
  const payload = buildTransactionPayload({ headerBytes, inputBytes }, prp, endorsements);
  return encodeEnvelope({ payload, signature: await creator.signer.sign(payload) });
}

async function codes(envelopes: Bytes[]) {
  const block = buildBlock(
    3,
    GENESIS_PREVIOUS_HASH,
    envelopes,
    encodeConsenterMetadata({ lastConfig: 0, raftIndex: 0 }),
    sha256,
  );
  const r = await validateBlock(block, ctx);
  return { names: [...r.codes].map(txValidationCodeName), reasons: r.transactions.map((t) => t.reason) };
}

describe('_lifecycle approvals at validation', () => {
  it("accepts an approval endorsed by the approving org's peer alone; refuses one written for another org", async () => {
    const o1 = orgs.Org1MSP!;
    const o2 = orgs.Org2MSP!;
    const o3 = orgs.Org3MSP!;
    const r = await codes([
      // Org1's admin, Org1's peer, Org1's approval: valid though LifecycleEndorsement wants 2 of 3 orgs.
      await lifecycleTx(o1.admin, [o1.peer], ['approvals/basic/1/Org1MSP']),
      // Org1's peer (a compromised or buggy one) writes Org2's approval: refused.
      await lifecycleTx(o1.admin, [o1.peer], ['approvals/basic/1/Org2MSP']),
      // Even a majority of the other orgs' peers cannot write Org1's approval.
      await lifecycleTx(o2.admin, [o2.peer, o3.peer], ['approvals/basic/1/Org1MSP']),
      // An org admin's signature is not a peer endorsement.
      await lifecycleTx(o1.admin, [o1.admin], ['approvals/basic/1/Org1MSP']),
      // One transaction writing two orgs' approvals needs a peer of each.
      await lifecycleTx(o1.admin, [o1.peer], ['approvals/basic/1/Org1MSP', 'approvals/basic/1/Org3MSP']),
      await lifecycleTx(o1.admin, [o1.peer, o3.peer], ['approvals/basic/1/Org1MSP', 'approvals/basic/1/Org3MSP']),
      // A malformed key under approvals/ is never valid.
      await lifecycleTx(o1.admin, [o1.peer, o2.peer, o3.peer], ['approvals/basic/Org1MSP']),
    ]);
    expect(r.names).toEqual([
      'VALID',
      'ENDORSEMENT_POLICY_FAILURE',
      'ENDORSEMENT_POLICY_FAILURE',
      'ENDORSEMENT_POLICY_FAILURE',
      'ENDORSEMENT_POLICY_FAILURE',
      'VALID',
      'ENDORSEMENT_POLICY_FAILURE',
    ]);
    expect(r.reasons[1]).toContain('must be endorsed by a peer of Org2MSP');
    expect(r.reasons[6]).toContain('not a valid approval key');
  });

  it('a definition (the commit) still needs LifecycleEndorsement', async () => {
    const o1 = orgs.Org1MSP!;
    const o2 = orgs.Org2MSP!;
    const r = await codes([
      await lifecycleTx(o1.admin, [o1.peer], ['definitions/basic']),
      await lifecycleTx(o1.admin, [o1.peer, o2.peer], ['definitions/basic']),
      // An approval riding along does not lower the bar for the definition.
      await lifecycleTx(o1.admin, [o1.peer], ['approvals/basic/1/Org1MSP', 'definitions/basic']),
    ]);
    expect(r.names).toEqual(['ENDORSEMENT_POLICY_FAILURE', 'VALID', 'ENDORSEMENT_POLICY_FAILURE']);
  });
});
