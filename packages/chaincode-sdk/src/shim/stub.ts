/**
 * ChaincodeStub: the chaincode's view of one transaction, with fabric-shim's method names and
 * result shapes. Every ledger call becomes one request to the peer on the transaction's stream;
 * the peer records reads and writes into the read-write set, so the stub keeps no state of its own
 * beyond the transaction's inputs and the event it sets.
 */
import { createHash } from 'node:crypto';
import type {
  ChaincodePayloads,
  ChaincodeRequestType,
  ResponsePayload,
  TransactionPayload,
} from '@loom/common/chaincode-protocol';
import {
  type ChaincodeProposalPayload,
  type ChannelHeader,
  type SignatureHeader,
  decodeChaincodeProposalPayload,
  decodeChannelHeader,
  decodeHeader,
  decodeProposal,
  decodeSignatureHeader,
  decodeSignedProposal,
} from '@loom/common/protocol/messages';
import {
  HistoryQueryIterator,
  type IterablePromise,
  type KV,
  type KeyModification,
  type StateQueryResponse,
  StateQueryIterator,
  expectQuery,
  iterablePromise,
} from './iterators.js';
import type { ChaincodeResponse, PeerRequester } from './types.js';

/** Fabric's composite-key namespace and separator. */
const COMPOSITEKEY_NS = '\u0000';
const MIN_UNICODE_RUNE_VALUE = '\u0000';
const MAX_UNICODE_RUNE_VALUE = '\u{10FFFF}';
/** Fabric substitutes this for an empty range start so the range excludes composite keys. */
const EMPTY_KEY_SUBSTITUTE = '\u0001';
/** The state-metadata entry holding a key-level endorsement policy. */
export const VALIDATION_PARAMETER = 'VALIDATION_PARAMETER';

export const RESPONSE_CODE = { OK: 200, ERRORTHRESHOLD: 400, ERROR: 500 } as const;

export interface SerializedIdentity {
  mspid: string;
  idBytes: Buffer;
}

export interface Timestamp {
  seconds: number;
  nanos: number;
}

export interface ChaincodeEvent {
  eventName: string;
  payload: Buffer;
}

/** The client's signed proposal, with its inner structures decoded. */
export interface DecodedSignedProposal {
  signature: Buffer;
  proposalBytes: Buffer;
  proposal: {
    header: { channelHeader: ChannelHeader; signatureHeader: SignatureHeader };
    payload: ChaincodeProposalPayload;
  };
}

export interface SplitCompositeKey {
  objectType: string | null;
  attributes: string[];
}

type Value = Uint8Array | string;

export class ChaincodeStub {
  static readonly RESPONSE_CODE = RESPONSE_CODE;

  readonly #peer: PeerRequester;
  readonly #channelId: string;
  readonly #txId: string;
  readonly #input: TransactionPayload;
  #event: ChaincodeEvent | undefined;
  #signedProposal: DecodedSignedProposal | null | undefined;

  constructor(peer: PeerRequester, channelId: string, txId: string, input: TransactionPayload) {
    this.#peer = peer;
    this.#channelId = channelId;
    this.#txId = txId;
    this.#input = input;
  }

  // ---- transaction inputs ----

  getArgs(): string[] {
    return this.#input.args.map((a) => Buffer.from(a).toString('utf8'));
  }

  getStringArgs(): string[] {
    return this.getArgs();
  }

  getBufferArgs(): Buffer[] {
    return this.#input.args.map((a) => Buffer.from(a));
  }

  getFunctionAndParameters(): { fcn: string; params: string[] } {
    const [fcn = '', ...params] = this.getStringArgs();
    return { fcn, params };
  }

  getTxID(): string {
    return this.#txId;
  }

  getChannelID(): string {
    return this.#channelId;
  }

  getCreator(): SerializedIdentity {
    return { mspid: this.#input.creator.mspId, idBytes: Buffer.from(this.#input.creator.idBytes) };
  }

  /** The MSP of the peer running this chaincode (Fabric reads it from the launch environment). */
  getMspID(): string {
    const id = process.env['CORE_PEER_LOCALMSPID'];
    if (id === undefined || id === '') throw new Error('CORE_PEER_LOCALMSPID is unset in chaincode process');
    return id;
  }

  getTransient(): Map<string, Buffer> {
    return new Map([...this.#input.transientMap].map(([k, v]) => [k, Buffer.from(v)]));
  }

  getSignedProposal(): DecodedSignedProposal | null {
    if (this.#signedProposal !== undefined) return this.#signedProposal;
    const raw = this.#input.signedProposal;
    if (raw.length === 0) return (this.#signedProposal = null);
    const sp = decodeSignedProposal(raw);
    const proposal = decodeProposal(sp.proposalBytes);
    const header = decodeHeader(proposal.header);
    this.#signedProposal = {
      signature: Buffer.from(sp.signature),
      proposalBytes: Buffer.from(sp.proposalBytes),
      proposal: {
        header: {
          channelHeader: decodeChannelHeader(header.channelHeader),
          signatureHeader: decodeSignatureHeader(header.signatureHeader),
        },
        payload: decodeChaincodeProposalPayload(proposal.payload),
      },
    };
    return this.#signedProposal;
  }

  /** Proposal decorations added by peer plugins in Fabric; Loom's peer adds none. */
  getDecorations(): Map<string, Buffer> {
    return new Map();
  }

  getTxTimestamp(): Timestamp {
    return { ...this.#input.txTimestamp };
  }

  getDateTimestamp(): Date {
    const t = this.#input.txTimestamp;
    return new Date(t.seconds * 1000 + Math.round(t.nanos / 1_000_000));
  }

  /**
   * Hex SHA-256 of the proposal's nonce and creator: a value unique to this proposal that
   * chaincode can bind application data to. (Loom has no epoch, Fabric's third input.)
   */
  getBinding(): string {
    const sp = this.getSignedProposal();
    if (sp === null) return '';
    const h = sp.proposal.header.signatureHeader;
    return createHash('sha256').update(h.nonce).update(h.creator).digest('hex');
  }

  // ---- public state ----

  async getState(key: string): Promise<Buffer> {
    return this.#getValue('GET_STATE', '', key);
  }

  async putState(key: string, value: Value): Promise<void> {
    validateKey(key);
    await this.#request('PUT_STATE', { collection: '', key, value: toBytes(value) });
  }

  async deleteState(key: string): Promise<void> {
    validateKey(key);
    await this.#request('DEL_STATE', { collection: '', key });
  }

  async setStateValidationParameter(key: string, ep: Uint8Array): Promise<void> {
    validateKey(key);
    await this.#request('PUT_STATE_METADATA', {
      collection: '',
      key,
      metakey: VALIDATION_PARAMETER,
      value: toBytes(ep),
    });
  }

  async getStateValidationParameter(key: string): Promise<Buffer> {
    return this.#getValidationParameter('', key);
  }

  getStateByRange(startKey: string, endKey: string): IterablePromise<StateQueryIterator, KV> {
    return this.#range('', startKey, endKey);
  }

  getStateByRangeWithPagination(
    startKey: string,
    endKey: string,
    pageSize: number,
    bookmark = '',
  ): IterablePromise<StateQueryResponse<StateQueryIterator>, KV> {
    return this.#paged(
      (async () => {
        validatePageSize(pageSize);
        validateSimpleKeys(startKey, endKey);
        return this.#request('GET_STATE_BY_RANGE', {
          collection: '',
          startKey: startKey === '' ? EMPTY_KEY_SUBSTITUTE : startKey,
          endKey,
          pagination: { pageSize, bookmark },
        });
      })(),
    );
  }

  getStateByPartialCompositeKey(objectType: string, attributes: string[]): IterablePromise<StateQueryIterator, KV> {
    return this.#partialComposite('', objectType, attributes);
  }

  getStateByPartialCompositeKeyWithPagination(
    objectType: string,
    attributes: string[],
    pageSize: number,
    bookmark = '',
  ): IterablePromise<StateQueryResponse<StateQueryIterator>, KV> {
    return this.#paged(
      (async () => {
        validatePageSize(pageSize);
        const startKey = this.createCompositeKey(objectType, attributes);
        return this.#request('GET_STATE_BY_RANGE', {
          collection: '',
          startKey,
          endKey: startKey + MAX_UNICODE_RUNE_VALUE,
          pagination: { pageSize, bookmark },
        });
      })(),
    );
  }

  getQueryResult(query: string): IterablePromise<StateQueryIterator, KV> {
    return this.#stateIterator(this.#request('GET_QUERY_RESULT', { collection: '', query, pagination: null }));
  }

  getQueryResultWithPagination(
    query: string,
    pageSize: number,
    bookmark = '',
  ): IterablePromise<StateQueryResponse<StateQueryIterator>, KV> {
    return this.#paged(
      (async () => {
        validatePageSize(pageSize);
        return this.#request('GET_QUERY_RESULT', { collection: '', query, pagination: { pageSize, bookmark } });
      })(),
    );
  }

  getHistoryForKey(key: string): IterablePromise<HistoryQueryIterator, KeyModification> {
    const p = (async () => {
      validateKey(key);
      const reply = expectQuery(await this.#request('GET_HISTORY_FOR_KEY', { key }));
      return new HistoryQueryIterator(this.#peer, this.#channelId, this.#txId, reply);
    })();
    return iterablePromise(p, (it) => it);
  }

  /**
   * Calls another chaincode in this transaction's context; `channel` names another channel, where
   * the call can only read. Resolves with the called chaincode's response, whatever its status.
   */
  async invokeChaincode(chaincodeName: string, args: Value[], channel?: string): Promise<ChaincodeResponse> {
    if (typeof chaincodeName !== 'string' || chaincodeName === '')
      throw new Error('chaincodeName must be a non-empty string');
    const name = channel ? `${chaincodeName}/${channel}` : chaincodeName;
    const reply = await this.#request('INVOKE_CHAINCODE', { chaincodeName: name, args: args.map(toBytes) });
    if (reply.kind !== 'chaincode') throw new Error(`peer answered INVOKE_CHAINCODE with a ${reply.kind} response`);
    return {
      status: reply.response.status,
      message: reply.response.message,
      payload: Buffer.from(reply.response.payload),
    };
  }

  setEvent(name: string, payload: Value): void {
    if (typeof name !== 'string' || name === '') throw new Error('Event name must be a non-empty string');
    this.#event = { eventName: name, payload: Buffer.from(toBytes(payload)) };
  }

  /** The event set by `setEvent`, sent with COMPLETED. */
  get chaincodeEvent(): ChaincodeEvent | undefined {
    return this.#event;
  }

  // ---- composite keys ----

  createCompositeKey(objectType: string, attributes: string[]): string {
    validateCompositeKeyAttribute(objectType);
    if (!Array.isArray(attributes)) throw new Error('attributes must be an array');
    let key = COMPOSITEKEY_NS + objectType + MIN_UNICODE_RUNE_VALUE;
    for (const a of attributes) {
      validateCompositeKeyAttribute(a);
      key += a + MIN_UNICODE_RUNE_VALUE;
    }
    return key;
  }

  splitCompositeKey(compositeKey: string): SplitCompositeKey {
    if (typeof compositeKey !== 'string' || compositeKey.length < 2 || compositeKey[0] !== COMPOSITEKEY_NS) {
      return { objectType: null, attributes: [] };
    }
    const parts = compositeKey.slice(1).split(MIN_UNICODE_RUNE_VALUE);
    // A well-formed key ends with the separator, leaving one empty trailing part.
    parts.pop();
    const [objectType, ...attributes] = parts;
    if (objectType === undefined || objectType === '') return { objectType: null, attributes: [] };
    return { objectType, attributes };
  }

  // ---- private data ----

  async getPrivateData(collection: string, key: string): Promise<Buffer> {
    validateCollection(collection);
    return this.#getValue('GET_STATE', collection, key);
  }

  async getPrivateDataHash(collection: string, key: string): Promise<Buffer> {
    validateCollection(collection);
    return this.#getValue('GET_PRIVATE_DATA_HASH', collection, key);
  }

  async putPrivateData(collection: string, key: string, value: Value): Promise<void> {
    validateCollection(collection);
    validateKey(key);
    await this.#request('PUT_STATE', { collection, key, value: toBytes(value) });
  }

  async deletePrivateData(collection: string, key: string): Promise<void> {
    validateCollection(collection);
    validateKey(key);
    await this.#request('DEL_STATE', { collection, key });
  }

  async purgePrivateData(collection: string, key: string): Promise<void> {
    validateCollection(collection);
    validateKey(key);
    await this.#request('PURGE_PRIVATE_DATA', { collection, key });
  }

  async setPrivateDataValidationParameter(collection: string, key: string, ep: Uint8Array): Promise<void> {
    validateCollection(collection);
    validateKey(key);
    await this.#request('PUT_STATE_METADATA', { collection, key, metakey: VALIDATION_PARAMETER, value: toBytes(ep) });
  }

  async getPrivateDataValidationParameter(collection: string, key: string): Promise<Buffer> {
    validateCollection(collection);
    return this.#getValidationParameter(collection, key);
  }

  getPrivateDataByRange(collection: string, startKey: string, endKey: string): IterablePromise<StateQueryIterator, KV> {
    return this.#range(collection, startKey, endKey, true);
  }

  getPrivateDataByPartialCompositeKey(
    collection: string,
    objectType: string,
    attributes: string[],
  ): IterablePromise<StateQueryIterator, KV> {
    return this.#partialComposite(collection, objectType, attributes, true);
  }

  getPrivateDataQueryResult(collection: string, query: string): IterablePromise<StateQueryIterator, KV> {
    return this.#stateIterator(
      (async () => {
        validateCollection(collection);
        return this.#request('GET_QUERY_RESULT', { collection, query, pagination: null });
      })(),
    );
  }

  // ---- plumbing ----

  #request<T extends ChaincodeRequestType>(type: T, payload: ChaincodePayloads[T]): Promise<ResponsePayload> {
    return this.#peer.request(this.#channelId, this.#txId, type, payload);
  }

  async #getValue(type: 'GET_STATE' | 'GET_PRIVATE_DATA_HASH', collection: string, key: string): Promise<Buffer> {
    validateKey(key);
    const reply = await this.#request(type, { collection, key });
    if (reply.kind !== 'value') throw new Error(`peer answered ${type} with a ${reply.kind} response`);
    return Buffer.from(reply.value);
  }

  async #getValidationParameter(collection: string, key: string): Promise<Buffer> {
    validateKey(key);
    const reply = await this.#request('GET_STATE_METADATA', { collection, key });
    if (reply.kind !== 'metadata') throw new Error(`peer answered GET_STATE_METADATA with a ${reply.kind} response`);
    const ep = reply.entries.get(VALIDATION_PARAMETER);
    return ep === undefined ? Buffer.alloc(0) : Buffer.from(ep);
  }

  #range(collection: string, startKey: string, endKey: string, isPrivate = false) {
    return this.#stateIterator(
      (async () => {
        if (isPrivate) validateCollection(collection);
        validateSimpleKeys(startKey, endKey);
        return this.#request('GET_STATE_BY_RANGE', {
          collection,
          startKey: startKey === '' ? EMPTY_KEY_SUBSTITUTE : startKey,
          endKey,
          pagination: null,
        });
      })(),
    );
  }

  #partialComposite(collection: string, objectType: string, attributes: string[], isPrivate = false) {
    return this.#stateIterator(
      (async () => {
        if (isPrivate) validateCollection(collection);
        const startKey = this.createCompositeKey(objectType, attributes);
        return this.#request('GET_STATE_BY_RANGE', {
          collection,
          startKey,
          endKey: startKey + MAX_UNICODE_RUNE_VALUE,
          pagination: null,
        });
      })(),
    );
  }

  #stateIterator(reply: Promise<ResponsePayload>): IterablePromise<StateQueryIterator, KV> {
    const p = reply.then((r) => new StateQueryIterator(this.#peer, this.#channelId, this.#txId, expectQuery(r)));
    return iterablePromise(p, (it) => it);
  }

  #paged(reply: Promise<ResponsePayload>): IterablePromise<StateQueryResponse<StateQueryIterator>, KV> {
    const p = reply.then((r) => {
      const q = expectQuery(r);
      return {
        iterator: new StateQueryIterator(this.#peer, this.#channelId, this.#txId, q),
        metadata: q.metadata ?? { fetchedRecordsCount: q.results.length, bookmark: '' },
      };
    });
    return iterablePromise(p, (r) => r.iterator);
  }
}

function toBytes(v: Value): Uint8Array {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (v instanceof Uint8Array) return v;
  throw new Error('value must be a Buffer, Uint8Array or string');
}

function validateKey(key: string): void {
  if (typeof key !== 'string' || key === '') throw new Error('key must be a non-empty string');
}

function validateCollection(collection: string): void {
  if (typeof collection !== 'string' || collection === '') throw new Error('collection must be a valid string');
}

function validatePageSize(pageSize: number): void {
  if (!Number.isSafeInteger(pageSize) || pageSize <= 0) throw new Error('pageSize must be a positive integer');
}

/** Range queries are over simple keys: composite keys (which begin with U+0000) are queried by partial key. */
function validateSimpleKeys(...keys: string[]): void {
  for (const k of keys) {
    if (typeof k !== 'string') throw new Error('range keys must be strings');
    if (k.length > 0 && k[0] === COMPOSITEKEY_NS) {
      throw new Error(`first character of the key [${k}] contains a null character which is not allowed`);
    }
  }
}

function validateCompositeKeyAttribute(a: unknown): void {
  if (typeof a !== 'string') throw new Error(`input is not of type string: ${String(a)}`);
  if (a.includes(MIN_UNICODE_RUNE_VALUE) || a.includes(MAX_UNICODE_RUNE_VALUE)) {
    throw new Error(`input contains unicode 0x0 or 0x10FFFF, which are reserved: ${JSON.stringify(a)}`);
  }
}
