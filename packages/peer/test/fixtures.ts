/**
 * A channel with real certificates (an orderer organization and two peer organizations, from
 * common's test CA) and builders for the blocks an ordering service would cut on it: endorser
 * transactions endorsed by real peer identities and signed by a real client, blocks hash-chained
 * and signed by the orderer's identity.
 */
import { randomBytes } from 'node:crypto';
import {
  type Block,
  blockSignedBytes,
  buildBlock,
  buildGenesisBlock,
  buildProposal,
  buildTransactionPayload,
  type Bytes,
  type ChannelConfig,
  computeBlockHash,
  computeProposalHash,
  decodeBlockHeader,
  encodeBlock,
  encodeChaincodeAction,
  encodeChaincodeEvent,
  encodeChannelConfig,
  encodeChannelHeader,
  encodeConfigEnvelope,
  encodeConsenterMetadata,
  encodeEnvelope,
  encodeHeader,
  encodePayload,
  encodeProposalResponsePayload,
  encodeSerializedIdentity,
  encodeSignatureHeader,
  encodeTxReadWriteSet,
  endorsementSignedBytes,
  HeaderType,
  type KVRead,
  type KVWrite,
  type OrgConfig,
  type RangeQueryInfo,
  sha256,
} from '@loom/common';
import { createTestOrg, type TestIdentity, type TestOrg } from '@loom/common/testing/index';

export interface TestNetwork {
  readonly channelId: string;
  readonly ordererOrg: TestOrg;
  readonly org1: TestOrg;
  readonly org2: TestOrg;
  readonly config: ChannelConfig;
  readonly genesis: Block;
}

function orgConfig(org: TestOrg, policies: Record<string, string>): OrgConfig {
  return {
    mspId: org.mspId,
    msp: {
      rootCerts: [org.ca.certPem],
      intermediateCerts: [],
      admins: [],
      crls: [],
      tlsRootCerts: [org.ca.certPem],
      tlsIntermediateCerts: [],
      nodeOUs: true,
    },
    anchorPeers: [],
    policies: Object.fromEntries(
      Object.entries(policies).map(([k, rule]) => [k, { rule, version: 0, modPolicy: 'Admins' }]),
    ),
    version: 0,
    modPolicy: 'Admins',
  };
}

const peerOrgPolicies = (m: string) => ({
  Readers: `OR('${m}.admin', '${m}.peer', '${m}.client')`,
  Writers: `OR('${m}.admin', '${m}.client')`,
  Admins: `OR('${m}.admin')`,
  Endorsement: `OR('${m}.peer')`,
});

const def = (rule: string) => ({ rule, version: 0, modPolicy: 'Admins' });

export function channelConfigFor(
  channelId: string,
  ordererOrg: TestOrg,
  peerOrgs: readonly TestOrg[],
  sequence = 0,
): ChannelConfig {
  return {
    channelId,
    sequence,
    version: 0,
    modPolicy: 'Admins',
    capabilities: ['V2_0'],
    orgs: Object.fromEntries(peerOrgs.map((o) => [o.mspId, orgConfig(o, peerOrgPolicies(o.mspId))])),
    policies: {
      Readers: def('ANY Readers'),
      Writers: def('ANY Writers'),
      Admins: def('MAJORITY Admins'),
      Endorsement: def('MAJORITY Endorsement'),
    },
    orderer: {
      consenters: [
        {
          id: 'orderer0',
          mspId: ordererOrg.mspId,
          host: '127.0.0.1',
          port: 7050,
          raftPort: 7051,
          identityCert: ordererOrg.orderer.certPem,
          tlsCert: ordererOrg.orderer.certPem,
        },
      ],
      batch: { batchTimeoutMs: 200, maxMessageCount: 500, absoluteMaxBytes: 10_000_000, preferredMaxBytes: 2_000_000 },
      orgs: {
        [ordererOrg.mspId]: orgConfig(ordererOrg, {
          Readers: `OR('${ordererOrg.mspId}.member')`,
          Writers: `OR('${ordererOrg.mspId}.member')`,
          Admins: `OR('${ordererOrg.mspId}.admin')`,
        }),
      },
      policies: {
        Readers: def('ANY Readers'),
        Writers: def('ANY Writers'),
        Admins: def('MAJORITY Admins'),
        BlockValidation: def('ANY Writers'),
      },
      version: 0,
      modPolicy: 'Admins',
    },
  };
}

export async function createTestNetwork(channelId = 'mychannel'): Promise<TestNetwork> {
  const [ordererOrg, org1, org2] = await Promise.all([
    createTestOrg('OrdererMSP'),
    createTestOrg('Org1MSP'),
    createTestOrg('Org2MSP'),
  ]);
  const config = channelConfigFor(channelId, ordererOrg, [org1, org2]);
  return { channelId, ordererOrg, org1, org2, config, genesis: buildGenesisBlock(config, 1_700_000_000_000, sha256) };
}

export interface TxSpec {
  readonly creator: TestIdentity;
  readonly endorsers: readonly TestIdentity[];
  readonly chaincode?: string;
  readonly reads?: KVRead[];
  readonly writes?: KVWrite[];
  readonly rangeQueries?: RangeQueryInfo[];
  readonly event?: { name: string; payload: Bytes };
  readonly channelId?: string;
  readonly timestamp?: number;
}

const enc = new TextEncoder();
export const put = (key: string, value: string): KVWrite => ({ key, isDelete: false, value: enc.encode(value) });
export const del = (key: string): KVWrite => ({ key, isDelete: true, value: new Uint8Array(0) });

/** A signed endorser transaction envelope. */
export async function endorserTx(net: TestNetwork, spec: TxSpec): Promise<{ envelope: Bytes; txId: string }> {
  const chaincode = spec.chaincode ?? 'basic';
  const proposal = buildProposal({
    channelId: spec.channelId ?? net.channelId,
    chaincodeName: chaincode,
    args: ['invoke'],
    creator: spec.creator.serialized,
    nonce: randomBytes(24),
    timestamp: spec.timestamp ?? 1_700_000_000_000,
    hash: sha256,
  });
  const results = encodeTxReadWriteSet({
    nsRwsets: [
      {
        namespace: chaincode,
        rwset: {
          reads: spec.reads ?? [],
          rangeQueriesInfo: spec.rangeQueries ?? [],
          writes: spec.writes ?? [],
          metadataWrites: [],
        },
        collectionHashedRwsets: [],
      },
    ],
  });
  const events = spec.event
    ? encodeChaincodeEvent({
        chaincodeId: chaincode,
        txId: proposal.txId,
        eventName: spec.event.name,
        payload: spec.event.payload,
      })
    : new Uint8Array(0);
  const prp = encodeProposalResponsePayload({
    proposalHash: computeProposalHash(proposal.headerBytes, proposal.inputBytes, sha256),
    extension: encodeChaincodeAction({
      results,
      events,
      response: { status: 200, message: '', payload: new Uint8Array(0) },
      chaincodeName: chaincode,
      chaincodeVersion: '1.0',
    }),
  });
  const endorsements = [];
  for (const e of spec.endorsers) {
    const endorser = encodeSerializedIdentity(e.serialized);
    endorsements.push({ endorser, signature: await e.signer.sign(endorsementSignedBytes(prp, endorser)) });
  }
  const payload = buildTransactionPayload(proposal, prp, endorsements);
  const envelope = encodeEnvelope({ payload, signature: await spec.creator.signer.sign(payload) });
  return { envelope, txId: proposal.txId };
}

/** Signs a block as an orderer does: `header ‖ signatureHeader ‖ consenterMetadata`. */
export async function signBlock(block: Block, orderer: TestIdentity): Promise<Block> {
  const signatureHeader = encodeSignatureHeader({
    creator: encodeSerializedIdentity(orderer.serialized),
    nonce: randomBytes(24),
  });
  const signature = await orderer.signer.sign(
    blockSignedBytes(block.header, signatureHeader, block.metadata.consenterMetadata),
  );
  return { ...block, metadata: { ...block.metadata, signatures: [{ signatureHeader, signature }] } };
}

/** Cuts signed blocks on top of a chain, as an ordering service would. */
export class TestChain {
  readonly blocks: Bytes[] = [];
  #prev: Block;
  #lastConfig = 0;

  constructor(
    readonly net: TestNetwork,
    readonly orderer: TestIdentity = net.ordererOrg.orderer,
  ) {
    this.#prev = net.genesis;
    this.blocks.push(encodeBlock(net.genesis));
  }

  get height(): number {
    return this.blocks.length;
  }

  async cut(envelopes: Bytes[]): Promise<Bytes> {
    const number = decodeBlockHeader(this.#prev.header).number + 1;
    const block = buildBlock(
      number,
      computeBlockHash(this.#prev, sha256),
      envelopes,
      encodeConsenterMetadata({ lastConfig: this.#lastConfig, raftIndex: number }),
      sha256,
    );
    const signed = await signBlock(block, this.orderer);
    this.#prev = signed;
    const bytes = encodeBlock(signed);
    this.blocks.push(bytes);
    return bytes;
  }

  /** A config block carrying `config` (signed by the orderer, as one it cut from a CONFIG_UPDATE). */
  async cutConfig(config: ChannelConfig): Promise<Bytes> {
    const creator = encodeSerializedIdentity(this.orderer.serialized);
    const payload = encodePayload({
      header: encodeHeader({
        channelHeader: encodeChannelHeader({
          type: HeaderType.CONFIG,
          version: 1,
          channelId: config.channelId,
          txId: '',
          timestamp: 1_700_000_000_000,
          extension: new Uint8Array(0),
        }),
        signatureHeader: encodeSignatureHeader({ creator, nonce: randomBytes(24) }),
      }),
      data: encodeConfigEnvelope({ config: encodeChannelConfig(config), lastUpdate: null }),
    });
    const envelope = encodeEnvelope({ payload, signature: await this.orderer.signer.sign(payload) });
    this.#lastConfig = this.height;
    return this.cut([envelope]);
  }
}
