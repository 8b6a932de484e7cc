/**
 * The checks a block must pass before a peer validates its transactions: it continues this peer's
 * chain (number, previousHash), its data is what the header commits to (dataHash), and the ordering
 * service signed it (the channel's orderer `BlockValidation` policy over the signers of
 * `header ‖ signatureHeader ‖ consenterMetadata`). Pure: identities come from an injected MspManager.
 */
import {
  type Block,
  type BlockHeader,
  blockSignedBytes,
  bytesEqual,
  type ChannelPolicies,
  computeDataHash,
  decodeBlockHeader,
  decodeSerializedIdentity,
  decodeSignatureHeader,
  type HashFn,
  LoomError,
  type MspManager,
  type SignerIdentity,
  toHex,
} from '@loom/common';

export const BlockCheckErrorCode = {
  /** The block number is not the ledger height. */
  OUT_OF_ORDER: 'LEDGER_BLOCK_OUT_OF_ORDER',
  /** previousHash is not the hash of the last committed header. */
  HASH_CHAIN_BROKEN: 'LEDGER_HASH_CHAIN_BROKEN',
  /** dataHash is not the Merkle root of the block's envelopes. */
  DATA_HASH_MISMATCH: 'LEDGER_DATA_HASH_MISMATCH',
  /** No signature set satisfying the orderer BlockValidation policy. */
  BAD_ORDERER_SIGNATURE: 'LEDGER_BAD_ORDERER_SIGNATURE',
  /** The block's bytes do not decode. */
  MALFORMED_BLOCK: 'LEDGER_MALFORMED_BLOCK',
} as const;

export function readBlockHeader(block: Block): BlockHeader {
  try {
    return decodeBlockHeader(block.header);
  } catch (e) {
    throw new LoomError(BlockCheckErrorCode.MALFORMED_BLOCK, `block header: ${(e as Error).message}`, { cause: e });
  }
}

/** Number = expected height, previousHash = hash of the previous header, dataHash = Merkle root of data. */
export function checkBlockContinues(
  block: Block,
  header: BlockHeader,
  expected: { number: number; previousHash: Uint8Array },
  hash: HashFn,
): void {
  if (header.number !== expected.number) {
    throw new LoomError(BlockCheckErrorCode.OUT_OF_ORDER, `expected block ${expected.number}, got ${header.number}`, {
      details: { expected: expected.number, got: header.number },
      httpStatus: 409,
    });
  }
  if (!bytesEqual(header.previousHash, expected.previousHash)) {
    throw new LoomError(
      BlockCheckErrorCode.HASH_CHAIN_BROKEN,
      `block ${header.number} does not chain onto block ${header.number - 1}`,
      {
        details: {
          blockNum: header.number,
          previousHash: toHex(header.previousHash),
          expected: toHex(expected.previousHash),
        },
      },
    );
  }
  if (!bytesEqual(header.dataHash, computeDataHash(block.data, hash))) {
    throw new LoomError(
      BlockCheckErrorCode.DATA_HASH_MISMATCH,
      `block ${header.number}: dataHash does not match its data`,
      {
        details: { blockNum: header.number },
      },
    );
  }
}

/**
 * The verified orderer identities that signed the block, then the orderer section's
 * `BlockValidation` policy over them (Fabric's `/Channel/Orderer/BlockValidation`); a channel
 * config without that policy needs one valid signature by a member of an orderer organization.
 */
export function checkOrdererSignatures(
  block: Block,
  blockNum: number,
  msps: MspManager,
  ordererPolicies: ChannelPolicies,
  ordererMspIds: readonly string[],
): SignerIdentity[] {
  const signers: SignerIdentity[] = [];
  const reasons: string[] = [];
  for (const [i, s] of block.metadata.signatures.entries()) {
    try {
      const sh = decodeSignatureHeader(s.signatureHeader);
      const serialized = decodeSerializedIdentity(sh.creator);
      if (!ordererMspIds.includes(serialized.mspId))
        throw new Error(`${serialized.mspId} is not an orderer organization`);
      const identity = msps.verifySignature(
        serialized,
        blockSignedBytes(block.header, s.signatureHeader, block.metadata.consenterMetadata),
        s.signature,
      );
      if (!signers.some((x) => x.id === identity.id)) signers.push(identity);
    } catch (e) {
      reasons.push(`signature ${i}: ${(e as Error).message}`);
    }
  }
  const fail = (why: string) =>
    new LoomError(BlockCheckErrorCode.BAD_ORDERER_SIGNATURE, `block ${blockNum}: ${why}`, {
      details: { blockNum, reasons },
    });
  if (signers.length === 0) throw fail(reasons.length ? reasons.join('; ') : 'no orderer signature');
  if (ordererPolicies.has('BlockValidation')) {
    const r = ordererPolicies.evaluate('BlockValidation', signers);
    if (!r.satisfied) throw fail(`BlockValidation policy not satisfied (${r.reason})`);
  }
  return signers;
}
