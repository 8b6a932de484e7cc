/**
 * Endorser transaction envelopes for the ledger's tests: a header and a read-write set of writes,
 * with placeholder signatures (what these tests check never verifies them).
 */
import {
  buildTransactionPayload,
  type Bytes,
  computeProposalHash,
  encodeChaincodeAction,
  encodeChaincodeInvocationSpec,
  encodeChannelHeader,
  encodeEnvelope,
  encodeHeader,
  encodeProposalResponsePayload,
  encodeSignatureHeader,
  encodeTxReadWriteSet,
  HeaderType,
  utf8,
} from '@loom/common';
import { sha256 } from '@loom/common/crypto/hash';

/** A write of `key` in namespace `ns`; `value` null is a delete. */
export interface TestWrite {
  ns: string;
  key: string;
  value: string | null;
}

export interface TestEnvelopeOptions {
  txId: string;
  writes?: readonly TestWrite[];
  timestamp?: number;
  channelId?: string;
  creator?: Bytes;
  nonce?: Bytes;
}

/** An envelope of an endorser transaction of chaincode `cc` writing `writes`, grouped by namespace in first-seen order. */
export function testEndorserEnvelope(o: TestEnvelopeOptions): Uint8Array {
  const writes = o.writes ?? [];
  const headerBytes = encodeHeader({
    channelHeader: encodeChannelHeader({
      type: HeaderType.ENDORSER_TRANSACTION,
      version: 1,
      channelId: o.channelId ?? 'ch1',
      txId: o.txId,
      timestamp: o.timestamp ?? 1000,
      extension: utf8('cc'),
    }),
    signatureHeader: encodeSignatureHeader({ creator: o.creator ?? utf8('me'), nonce: o.nonce ?? new Uint8Array(24) }),
  });
  const inputBytes = encodeChaincodeInvocationSpec({ chaincodeName: 'cc', args: [utf8('fn')], isInit: false });
  const namespaces = [...new Set(writes.map((w) => w.ns))];
  const prp = encodeProposalResponsePayload({
    proposalHash: computeProposalHash(headerBytes, inputBytes, sha256),
    extension: encodeChaincodeAction({
      results: encodeTxReadWriteSet({
        nsRwsets: namespaces.map((namespace) => ({
          namespace,
          rwset: {
            reads: [],
            rangeQueriesInfo: [],
            writes: writes
              .filter((w) => w.ns === namespace)
              .map((w) => ({ key: w.key, isDelete: w.value === null, value: utf8(w.value ?? '') })),
            metadataWrites: [],
          },
          collectionHashedRwsets: [],
        })),
      }),
      events: new Uint8Array(0),
      response: { status: 200, message: '', payload: new Uint8Array(0) },
      chaincodeName: 'cc',
      chaincodeVersion: '1',
    }),
  });
  const payload = buildTransactionPayload({ headerBytes, inputBytes }, prp, []);
  return encodeEnvelope({ payload, signature: utf8('sig') });
}
