/**
 * Test material for the orderer: an ordering org with N orderer identities, two application orgs
 * (Org1 in the channel, Org9 outside it), a genesis block naming the orderers as consenters, and
 * signed envelopes.
 */
import { randomBytes } from 'node:crypto';
import {
  type Block,
  buildBlock,
  type ChannelConfig,
  computeConfigUpdate,
  computeTxId,
  configSignatureSignedBytes,
  encodeBlock,
  encodeChannelConfig,
  encodeChannelHeader,
  encodeConfigEnvelope,
  encodeConfigUpdate,
  encodeConfigUpdateEnvelope,
  encodeConsenterMetadata,
  encodeEnvelope,
  encodeHeader,
  encodePayload,
  encodeSeekInfo,
  encodeSerializedIdentity,
  encodeSignatureHeader,
  GENESIS_PREVIOUS_HASH,
  HeaderType,
  type OrgConfig,
  type SeekInfo,
  sign,
} from '@loom/common';
import { sha256 } from '@loom/common/crypto/hash';
import type { MspConfig } from '@loom/common/msp/types';
import { createTestCa, createTestOrg, type TestIdentity, type TestOrg } from '@loom/common/testing/index';

export interface OrdererIdentity extends TestIdentity {
  readonly consenterId: string;
}

export interface Network {
  readonly channel: string;
  readonly ordererMspId: string;
  readonly ordererOrgMsp: MspConfig;
  readonly orderers: OrdererIdentity[];
  readonly ordererAdmin: TestIdentity;
  readonly org1: TestOrg;
  /** An organization that is not a member of the channel. */
  readonly outsider: TestOrg;
}

export async function createNetwork(n: number, channel = 'testchannel'): Promise<Network> {
  const ca = await createTestCa({ mspId: 'OrdererMSP' });
  const orderers: OrdererIdentity[] = [];
  for (let i = 0; i < n; i++) {
    const id = await ca.issue({ cn: `orderer${i}.example.com`, role: 'orderer' });
    orderers.push({ ...id, consenterId: `orderer${i}` });
  }
  const ordererAdmin = await ca.issue({ cn: 'Admin@example.com', role: 'admin' });
  const [org1, outsider] = await Promise.all([createTestOrg('Org1MSP'), createTestOrg('Org9MSP')]);
  return { channel, ordererMspId: 'OrdererMSP', ordererOrgMsp: ca.mspConfig(), orderers, ordererAdmin, org1, outsider };
}

const pd = (rule: string) => ({ rule, version: 0, modPolicy: 'Admins' });

function orgConfig(msp: MspConfig, policies: Record<string, string>): OrgConfig {
  return {
    mspId: msp.mspId,
    msp: {
      rootCerts: [...msp.rootCerts],
      intermediateCerts: [...(msp.intermediateCerts ?? [])],
      admins: [...(msp.admins ?? [])],
      crls: [...(msp.revocationList ?? [])],
      tlsRootCerts: [...(msp.tlsRootCerts ?? [])],
      tlsIntermediateCerts: [...(msp.tlsIntermediateCerts ?? [])],
      nodeOUs: msp.nodeOUs?.enable ?? true,
    },
    anchorPeers: [],
    policies: Object.fromEntries(Object.entries(policies).map(([k, v]) => [k, pd(v)])),
    version: 0,
    modPolicy: 'Admins',
  };
}

export interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly raftPort: number;
}

export function channelConfig(
  net: Network,
  endpoints: readonly Endpoint[],
  batch: Partial<ChannelConfig['orderer']['batch']> = {},
): ChannelConfig {
  const m = net.org1.mspId;
  return {
    channelId: net.channel,
    sequence: 0,
    version: 0,
    modPolicy: 'Admins',
    capabilities: ['V1'],
    orgs: {
      [m]: orgConfig(net.org1.mspConfig(), {
        Readers: `OR('${m}.admin', '${m}.peer', '${m}.client')`,
        Writers: `OR('${m}.admin', '${m}.client')`,
        Admins: `OR('${m}.admin')`,
      }),
    },
    policies: { Readers: pd('ANY Readers'), Writers: pd('ANY Writers'), Admins: pd('MAJORITY Admins') },
    orderer: {
      version: 0,
      modPolicy: 'Admins',
      orgs: { [net.ordererMspId]: orgConfig(net.ordererOrgMsp, { Admins: `OR('${net.ordererMspId}.admin')` }) },
      policies: { Admins: pd('MAJORITY Admins') },
      batch: {
        batchTimeoutMs: 100,
        maxMessageCount: 50,
        absoluteMaxBytes: 256 * 1024,
        preferredMaxBytes: 128 * 1024,
        ...batch,
      },
      consenters: net.orderers.map((o, i) => ({
        id: o.consenterId,
        mspId: net.ordererMspId,
        host: endpoints[i]?.host ?? '127.0.0.1',
        port: endpoints[i]?.port ?? 1,
        raftPort: endpoints[i]?.raftPort ?? 1,
        identityCert: o.certPem,
        tlsCert: '',
      })),
    },
  };
}

function signedEnvelope(signer: TestIdentity, type: number, channel: string, data: Uint8Array): Uint8Array {
  const creator = encodeSerializedIdentity(signer.serialized);
  const nonce = randomBytes(24);
  const header = encodeHeader({
    channelHeader: encodeChannelHeader({
      type: type as HeaderType,
      version: 1,
      channelId: channel,
      txId: type === HeaderType.ENDORSER_TRANSACTION ? computeTxId(nonce, creator, sha256) : '',
      timestamp: Date.now(),
      extension: new Uint8Array(),
    }),
    signatureHeader: encodeSignatureHeader({ creator, nonce }),
  });
  const payload = encodePayload({ header, data });
  return encodeEnvelope({ payload, signature: signer.signer.sign(payload) as Uint8Array });
}

export function genesisBlock(net: Network, config: ChannelConfig): { bytes: Uint8Array; block: Block } {
  const env = signedEnvelope(
    net.ordererAdmin,
    HeaderType.CONFIG,
    config.channelId,
    encodeConfigEnvelope({ config: encodeChannelConfig(config), lastUpdate: null }),
  );
  const block = buildBlock(
    0,
    GENESIS_PREVIOUS_HASH,
    [env],
    encodeConsenterMetadata({ lastConfig: 0, raftIndex: 0 }),
    sha256,
  );
  return { bytes: encodeBlock(block), block };
}

/** An ENDORSER_TRANSACTION envelope; the orderer does not look inside `data`. */
export function txEnvelope(signer: TestIdentity, channel: string, data: Uint8Array = randomBytes(64)): Uint8Array {
  return signedEnvelope(signer, HeaderType.ENDORSER_TRANSACTION, channel, data);
}

export function seekEnvelope(signer: TestIdentity, channel: string, seek: SeekInfo): Uint8Array {
  return signedEnvelope(signer, HeaderType.DELIVER_SEEK_INFO, channel, encodeSeekInfo(seek));
}

/**
 * A CONFIG_UPDATE envelope from `signer`. With `current`, the update is computed from it (versions
 * of changed elements bumped, as `loom channel config compute-update` does); `signers` add their
 * ConfigSignatures over the update bytes.
 */
export function configUpdateEnvelope(
  signer: TestIdentity,
  baseSequence: number,
  config: ChannelConfig,
  options: { current?: ChannelConfig; signers?: readonly TestIdentity[] } = {},
): Uint8Array {
  const update = encodeConfigUpdate(
    options.current
      ? computeConfigUpdate(options.current, config)
      : { channelId: config.channelId, baseSequence, config },
  );
  const signatures = (options.signers ?? []).map((s) => {
    const signatureHeader = encodeSignatureHeader({
      creator: encodeSerializedIdentity(s.serialized),
      nonce: randomBytes(24),
    });
    return { signatureHeader, signature: sign(s.privateKey, configSignatureSignedBytes(signatureHeader, update)) };
  });
  return signedEnvelope(
    signer,
    HeaderType.CONFIG_UPDATE,
    config.channelId,
    encodeConfigUpdateEnvelope({ configUpdate: update, signatures }),
  );
}

/** Splits a deliver stream body into encoded blocks. */
export function splitFrames(body: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let off = 0;
  while (body.length - off >= 4) {
    const len = new DataView(body.buffer, body.byteOffset + off, 4).getUint32(0);
    if (body.length - off - 4 < len) break;
    out.push(body.slice(off + 4, off + 4 + len));
    off += 4 + len;
  }
  return out;
}
