/**
 * A peer's private data service: the endorser's `distribute` (own transient store, then push to
 * member peers), the push/pull request handlers (authenticated member peers only), the ledger's
 * commit hook (transient → private store in the block's batch, missing data recorded, transient
 * purge), and background reconciliation of missing data (pull from member peers, retried with
 * backoff; also after a restart, from the missing-data index).
 */
import {
  type Block,
  type Bytes,
  bytesEqual,
  decodeBlock,
  decodeKVRWSet,
  decodeTxPvtReadWriteSet,
  encodeTxPvtReadWriteSet,
  isLoomError,
  type Logger,
  LoomError,
  type SerializedIdentity,
  sha256,
  type TxPvtReadWriteSet,
} from '@loom/common';
import type { CollectionConfig } from '../chaincode/lifecycle/collections.js';
import type { ChannelLedger, LedgerPrivateDataHook } from '../committer/ledger.js';
import type { LedgerStores } from '../ledger/ledger-stores.js';
import { txCollectionHashes, txIdsOf, validCollectionHashes } from './block-hashes.js';
import {
  type MissingEntry,
  PrivateDataStore,
  pickCollection,
  type TxCollectionHashes,
  writesMatchHashes,
} from './private-store.js';
import type { TransientStore } from './transient-store.js';
import {
  decodePullPayload,
  decodePullResponse,
  decodePushPayload,
  decodeSignedRequest,
  encodePullResponse,
  type PrivateDataPeer,
  PrivateDataErrorCode,
  type PrivateDataTransport,
  type PulledItem,
} from './transport.js';

/** A validated identity able to check its signatures (MspManager's). */
interface SenderIdentity {
  readonly mspId: string;
  readonly role: string | undefined;
  verify(message: Uint8Array, signature: Uint8Array): void;
}

export interface PrivateDataServiceOptions {
  readonly mspId: string;
  readonly transient: TransientStore;
  readonly transport: PrivateDataTransport;
  /** A joined channel's ledger and MSPs. */
  readonly channel: (
    channelId: string,
  ) =>
    | { readonly ledger: ChannelLedger; readonly msp: { deserialize(s: SerializedIdentity): SenderIdentity } }
    | undefined;
  readonly collection: (channelId: string, namespace: string, collection: string) => CollectionConfig | undefined;
  /** The channel's other peers (never this one), with their orgs. */
  readonly peers: (channelId: string) => readonly PrivateDataPeer[];
  readonly logger: Logger;
  readonly clock?: () => number;
  /** Transient entries of transactions that never commit are dropped this many blocks later (default 1000). */
  readonly transientMaxBlockAge?: number;
  /** Per push/pull timeout (default 5 s). */
  readonly requestTimeoutMs?: number;
  /** Background reconciliation period (default 3 s). */
  readonly reconcileIntervalMs?: number;
  /** Cap of the retry backoff (default 60 s). */
  readonly maxBackoffMs?: number;
  /** How far a signed request's timestamp may be from the clock (default 5 min). */
  readonly requestWindowMs?: number;
}

export interface PrivateDataService {
  /** For the endorser: transient store, then dissemination. */
  distribute(channelId: string, txId: string, pvt: TxPvtReadWriteSet, height: number): Promise<void>;
  /** The ledger commit hook of a channel. */
  ledgerHook(channelId: string): LedgerPrivateDataHook;
  /** Handles a signed push or pull request body (HTTP route). */
  handle(kind: 'push' | 'pull', body: Bytes): Promise<Bytes | { stored: number }>;
  /** One reconciliation round of a channel; resolves with what it filled. */
  reconcile(channelId: string): Promise<{ filled: number; remaining: number }>;
  /**
   * State transfer, source side: the private writes of block `blockNum` that a peer of
   * `requesterMspId` may hold (collections both its org and this peer's org are members of), encoded
   * as a pull response (transport.ts); undefined when there are none.
   */
  blockPrivateData(channelId: string, blockNum: number, requesterMspId: string): Promise<Bytes | undefined>;
  /**
   * State transfer, receiving side: whether a block (not yet committed) carries private writes of
   * collections this peer's org is a member of that the transient store does not hold.
   */
  needsPrivateData(channelId: string, block: Bytes | Block, blockNum?: number): Promise<boolean>;
  /**
   * Holds private data received for block `blockNum` (a pull response, from another peer) until that
   * block commits: the commit hook checks each item against the block's hashes and writes the ones
   * that match in the block's batch; what is still missing is recorded and reconciled as usual.
   * Returns the number of items held; `onCommitted` gets how many were written with the block.
   * Throws PRIVDATA_BAD_REQUEST when `data` does not decode.
   */
  stageBlockPrivateData(
    channelId: string,
    blockNum: number,
    data: Bytes,
    onCommitted?: (written: number) => void,
  ): number;
  /** Private values (current and history) a member peer holds, for inspection and tests. */
  store(channelId: string): PrivateDataStore | undefined;
  start(channels: () => readonly string[]): void;
  stop(): Promise<void>;
}

const privateStoreOf = (stores: LedgerStores) => new PrivateDataStore(stores.kv.sublevel('pvt'), stores.state);

function shuffle<T>(a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Only the collections `keep` accepts; null when none is left. */
function filterPvt(pvt: TxPvtReadWriteSet, keep: (ns: string, coll: string) => boolean): TxPvtReadWriteSet | null {
  const nsPvtRwsets = pvt.nsPvtRwsets
    .map((n) => ({
      ...n,
      collectionPvtRwsets: n.collectionPvtRwsets.filter((c) => keep(n.namespace, c.collectionName)),
    }))
    .filter((n) => n.collectionPvtRwsets.length > 0);
  return nsPvtRwsets.length === 0 ? null : { nsPvtRwsets };
}

export function createPrivateDataService(o: PrivateDataServiceOptions): PrivateDataService {
  const log = o.logger;
  const now = () => o.clock?.() ?? Date.now();
  const timeoutMs = o.requestTimeoutMs ?? 5_000;
  const maxAge = o.transientMaxBlockAge ?? 1000;
  const maxBackoff = o.maxBackoffMs ?? 60_000;
  const window = o.requestWindowMs ?? 5 * 60_000;
  const isMember = (channelId: string, ns: string, coll: string, mspId = o.mspId) =>
    o.collection(channelId, ns, coll)?.memberOrgs.includes(mspId) ?? false;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const running = new Map<string, Promise<{ filled: number; remaining: number }>>();
  /** Private data received by state transfer, per channel and block, until the block commits. */
  const staged = new Map<
    string,
    Map<number, { items: PulledItem[]; written: number; onCommitted?: ((n: number) => void) | undefined }>
  >();
  const soon = new Map<string, NodeJS.Timeout>();

  async function distribute(channelId: string, txId: string, pvt: TxPvtReadWriteSet, height: number): Promise<void> {
    const own = filterPvt(pvt, (ns, coll) => isMember(channelId, ns, coll));
    if (own) await o.transient.channel(channelId).persist(txId, height, encodeTxPvtReadWriteSet(own));
    // Per collection: the member peers to reach, at most maxPeerCount, at least requiredPeerCount.
    const others = o.peers(channelId);
    const plans: { ns: string; coll: string; config: CollectionConfig; candidates: PrivateDataPeer[] }[] = [];
    for (const n of pvt.nsPvtRwsets) {
      for (const c of n.collectionPvtRwsets) {
        const config = o.collection(channelId, n.namespace, c.collectionName);
        if (!config) continue;
        const candidates = shuffle(others.filter((p) => config.memberOrgs.includes(p.mspId)));
        plans.push({ ns: n.namespace, coll: c.collectionName, config, candidates });
      }
    }
    const acked = new Set<string>();
    const failed = new Map<string, string>();
    const pushTo = async (peer: PrivateDataPeer) => {
      if (acked.has(peer.endpoint) || failed.has(peer.endpoint)) return;
      const forPeer = filterPvt(pvt, (ns, coll) => isMember(channelId, ns, coll, peer.mspId));
      if (!forPeer) return;
      try {
        await o.transport.push(
          peer,
          { channelId, txId, endorsedAtHeight: height, pvtRwset: encodeTxPvtReadWriteSet(forPeer) },
          timeoutMs,
        );
        acked.add(peer.endpoint);
      } catch (e) {
        failed.set(peer.endpoint, (e as Error).message);
        log.warn(
          { channel: channelId, txId, peer: peer.endpoint, err: (e as Error).message },
          'private data push failed',
        );
      }
    };
    const count = (p: (typeof plans)[number]) => p.candidates.filter((c) => acked.has(c.endpoint)).length;
    // First wave: up to maxPeerCount per collection; then more candidates while a collection lacks acks.
    await Promise.all(plans.flatMap((p) => p.candidates.slice(0, p.config.maxPeerCount).map(pushTo)));
    for (const p of plans) {
      for (const c of p.candidates) {
        if (count(p) >= p.config.requiredPeerCount) break;
        await pushTo(c);
      }
    }
    for (const p of plans) {
      const n = count(p);
      if (n < p.config.requiredPeerCount) {
        throw new LoomError(
          PrivateDataErrorCode.DISSEMINATION_FAILED,
          `failed to distribute private collection ${p.ns}/${p.coll} of transaction ${txId}: required ${p.config.requiredPeerCount} peer(s) to acknowledge, got ${n} of ${p.candidates.length} member peer(s) reachable`,
          {
            httpStatus: 503,
            details: {
              txId,
              namespace: p.ns,
              collection: p.coll,
              requiredPeerCount: p.config.requiredPeerCount,
              acknowledged: n,
              candidates: p.candidates.length,
              failures: p.candidates.filter((c) => failed.has(c.endpoint)).map((c) => c.endpoint),
            },
          },
        );
      }
    }
  }

  const stagedKey = (txId: string, ns: string, coll: string) => `${txId}\u0000${ns}\u0000${coll}`;

  /**
   * The staged private data of a block that matches the block's hashes, by (txId, ns, coll). Full
   * match of the collection's pvtRwsetHash, or — when the source has since purged keys of it — every
   * write it sent matching the block's hashed writes (the same rule reconciliation applies).
   */
  function stagedFor(
    channelId: string,
    blockNum: number,
    txs: readonly TxCollectionHashes[],
  ): Map<string, Bytes> & { used?: { written: number } } {
    const out: Map<string, Bytes> & { used?: { written: number } } = new Map();
    const s = staged.get(channelId)?.get(blockNum);
    if (!s) return out;
    s.written = 0;
    out.used = s;
    for (const t of txs) {
      if (t.pvtRwsetHash.length === 0) continue;
      const copies = s.items.filter(
        (i) => i.txNum === t.txNum && i.namespace === t.namespace && i.collection === t.collection,
      );
      if (copies.length === 0) continue;
      const item = copies.find((i) => {
        if (bytesEqual(sha256(i.rwset), t.pvtRwsetHash)) return true;
        try {
          return writesMatchHashes(decodeKVRWSet(i.rwset), t);
        } catch {
          return false;
        }
      });
      if (item) out.set(stagedKey(t.txId, t.namespace, t.collection), item.rwset);
      else {
        log.warn(
          { channel: channelId, blockNum, txNum: t.txNum, namespace: t.namespace, collection: t.collection },
          'private data received by state transfer does not match the block hashes: ignored',
        );
      }
    }
    return out;
  }

  async function blockPrivateData(
    channelId: string,
    blockNum: number,
    requesterMspId: string,
  ): Promise<Bytes | undefined> {
    const ch = o.channel(channelId);
    if (!ch || blockNum >= ch.ledger.height()) return undefined;
    const block = await ch.ledger.getBlock(blockNum);
    if (!block) return undefined;
    const store = privateStoreOf(ch.ledger.stores());
    const items: PulledItem[] = [];
    for (let txNum = 0; txNum < block.data.length; txNum++) {
      for (const h of txCollectionHashes(block, txNum)) {
        // Only what both the requester's org and this peer's org may hold (Fabric's collection
        // membership rule for pulling private data).
        if (h.pvtRwsetHash.length === 0) continue;
        if (!isMember(channelId, h.namespace, h.collection, requesterMspId)) continue;
        if (!isMember(channelId, h.namespace, h.collection)) continue;
        const rwset = await store.committedWrites(blockNum, txNum, h.namespace, h.collection);
        if (rwset) items.push({ blockNum, txNum, namespace: h.namespace, collection: h.collection, rwset });
      }
    }
    return items.length === 0 ? undefined : encodePullResponse(items);
  }

  async function needsPrivateData(channelId: string, blockBytes: Bytes | Block, blockNum?: number): Promise<boolean> {
    let block: Block;
    try {
      block = blockBytes instanceof Uint8Array ? decodeBlock(blockBytes) : blockBytes;
    } catch {
      return false;
    }
    const transient = o.transient.channel(channelId);
    const received = (blockNum !== undefined ? staged.get(channelId)?.get(blockNum)?.items : undefined) ?? [];
    for (let txNum = 0; txNum < block.data.length; txNum++) {
      const hashes = txCollectionHashes(block, txNum).filter(
        (h) => h.pvtRwsetHash.length > 0 && isMember(channelId, h.namespace, h.collection),
      );
      if (hashes.length === 0) continue;
      const entries = (await transient.get(hashes[0]!.txId)).flatMap((e) => {
        try {
          return [decodeTxPvtReadWriteSet(e.pvtRwset)];
        } catch {
          return [];
        }
      });
      for (const h of hashes) {
        if (entries.some((p) => pickCollection(p, h.namespace, h.collection, h.pvtRwsetHash))) continue;
        const got = received.some(
          (i) =>
            i.txNum === txNum &&
            i.namespace === h.namespace &&
            i.collection === h.collection &&
            bytesEqual(sha256(i.rwset), h.pvtRwsetHash),
        );
        if (!got) return true;
      }
    }
    return false;
  }

  function stageBlockPrivateData(
    channelId: string,
    blockNum: number,
    data: Bytes,
    onCommitted?: (written: number) => void,
  ): number {
    let items: PulledItem[];
    try {
      items = decodePullResponse(data).filter((i) => i.blockNum === blockNum);
    } catch (e) {
      throw new LoomError(
        PrivateDataErrorCode.BAD_REQUEST,
        `private data of block ${blockNum} does not decode: ${(e as Error).message}`,
        { httpStatus: 400 },
      );
    }
    let m = staged.get(channelId);
    if (!m) {
      m = new Map();
      staged.set(channelId, m);
    }
    // Blocks already committed (or given up on) leave nothing behind; a bounded window stays.
    const height = o.channel(channelId)?.ledger.height() ?? 0;
    for (const k of m.keys()) if (k < height || m.size > 256) m.delete(k);
    // Several peers may answer for one block, each with what it holds: every copy is kept, and the
    // commit takes the first that matches the block's hashes.
    const prior = m.get(blockNum);
    if (prior) {
      prior.items.push(...items);
      return items.length;
    }
    m.set(blockNum, { items, written: 0, onCommitted });
    return items.length;
  }

  function ledgerHook(channelId: string): LedgerPrivateDataHook {
    let lastAgePurge = 0;
    return {
      async prepare({ batch, block, blockNum, codes, result, stores }) {
        const hasCollections = result.updates.some((u) => u.collection !== undefined);
        const txs = hasCollections ? validCollectionHashes(block, codes) : [];
        const at = new Map<string, TxPvtReadWriteSet[]>();
        for (const t of txs) {
          if (t.pvtRwsetHash.length === 0 || at.has(t.txId) || !isMember(channelId, t.namespace, t.collection))
            continue;
          const entries = await o.transient.channel(channelId).get(t.txId);
          at.set(
            t.txId,
            entries.flatMap((e) => {
              try {
                return [decodeTxPvtReadWriteSet(e.pvtRwset)];
              } catch {
                return [];
              }
            }),
          );
        }
        const fromPeers = stagedFor(channelId, blockNum, txs);
        const r = await privateStoreOf(stores).prepareCommit({
          batch,
          blockNum,
          txs,
          updates: result.updates,
          available: (txId, ns, coll, hash) => {
            for (const p of at.get(txId) ?? []) {
              const b = pickCollection(p, ns, coll, hash);
              if (b) return b;
            }
            const b = fromPeers.get(stagedKey(txId, ns, coll));
            if (b && fromPeers.used) fromPeers.used.written++;
            return b;
          },
          collection: (ns, coll) => {
            const c = o.collection(channelId, ns, coll);
            return c ? { blockToLive: c.blockToLive, isMember: c.memberOrgs.includes(o.mspId) } : undefined;
          },
          now: now(),
        });
        if (r.missing > 0) {
          log.info(
            { channel: channelId, blockNum, missing: r.missing },
            'private data missing at commit: will reconcile',
          );
          scheduleSoon(channelId);
        }
        if (r.purgedKeys + r.expired > 0) {
          log.debug({ channel: channelId, blockNum, purged: r.purgedKeys, expired: r.expired }, 'private data purged');
        }
      },
      async committed({ block, blockNum }) {
        const s = staged.get(channelId)?.get(blockNum);
        if (s) {
          staged.get(channelId)?.delete(blockNum);
          s.onCommitted?.(s.written);
        }
        const t = o.transient.channel(channelId);
        await t.purgeByTxIds(txIdsOf(block));
        if (blockNum - lastAgePurge >= 10 && blockNum > maxAge) {
          lastAgePurge = blockNum;
          await t.purgeBelowHeight(blockNum - maxAge);
        }
      },
    };
  }

  function authenticate(body: Bytes, kind: 'push' | 'pull') {
    const req = decodeSignedRequest(body);
    if (req.kind !== kind)
      throw new LoomError(PrivateDataErrorCode.BAD_REQUEST, `a ${req.kind} request sent to ${kind}`, {
        httpStatus: 400,
      });
    if (Math.abs(now() - req.timestampMs) > window) {
      throw new LoomError(
        PrivateDataErrorCode.BAD_REQUEST,
        'private data request timestamp is outside the allowed window',
        {
          httpStatus: 400,
        },
      );
    }
    const ch = o.channel(req.channelId);
    if (!ch) {
      throw new LoomError('PEER_CHANNEL_NOT_JOINED', `this peer has not joined channel ${req.channelId}`, {
        httpStatus: 404,
      });
    }
    let id: SenderIdentity;
    try {
      id = ch.msp.deserialize(req.sender);
      id.verify(req.signed, req.signature);
    } catch (e) {
      throw new LoomError(
        PrivateDataErrorCode.FORBIDDEN,
        `private data request not signed by a valid member of channel ${req.channelId}: ${isLoomError(e) ? `${e.code}: ` : ''}${(e as Error).message}`,
        { httpStatus: 403 },
      );
    }
    if (id.role !== undefined && id.role !== 'peer') {
      throw new LoomError(
        PrivateDataErrorCode.FORBIDDEN,
        `private data requests are accepted from peers only, not ${id.role}`,
        {
          httpStatus: 403,
        },
      );
    }
    return { req, id, ch };
  }

  async function handle(kind: 'push' | 'pull', body: Bytes): Promise<Bytes | { stored: number }> {
    const { req, id, ch } = authenticate(body, kind);
    const channelId = req.channelId;
    if (kind === 'push') {
      const m = decodePushPayload(channelId, req.payload);
      let pvt: TxPvtReadWriteSet;
      try {
        pvt = decodeTxPvtReadWriteSet(m.pvtRwset);
      } catch (e) {
        throw new LoomError(
          PrivateDataErrorCode.BAD_REQUEST,
          `pushed private rwset does not decode: ${(e as Error).message}`,
          {
            httpStatus: 400,
          },
        );
      }
      for (const n of pvt.nsPvtRwsets) {
        for (const c of n.collectionPvtRwsets) {
          if (!isMember(channelId, n.namespace, c.collectionName, id.mspId)) {
            throw new LoomError(
              PrivateDataErrorCode.FORBIDDEN,
              `${id.mspId} is not a member of collection ${n.namespace}/${c.collectionName}`,
              { httpStatus: 403 },
            );
          }
        }
      }
      const own = filterPvt(pvt, (ns, coll) => isMember(channelId, ns, coll));
      if (!own) return { stored: 0 };
      // An already committed transaction's data comes too late for the transient store.
      if ((await ch.ledger.getTxLocation(m.txId)) !== undefined) return { stored: 0 };
      await o.transient.channel(channelId).persist(m.txId, ch.ledger.height(), encodeTxPvtReadWriteSet(own));
      return { stored: own.nsPvtRwsets.reduce((n, x) => n + x.collectionPvtRwsets.length, 0) };
    }
    const items = decodePullPayload(req.payload);
    const store = privateStoreOf(ch.ledger.stores());
    const out: PulledItem[] = [];
    for (const it of items) {
      // Pull answers members only, and only with what this peer holds as a member.
      if (!isMember(channelId, it.namespace, it.collection, id.mspId)) {
        throw new LoomError(
          PrivateDataErrorCode.FORBIDDEN,
          `${id.mspId} is not a member of collection ${it.namespace}/${it.collection}`,
          { httpStatus: 403 },
        );
      }
      if (!isMember(channelId, it.namespace, it.collection)) continue;
      const rwset = await store.committedWrites(it.blockNum, it.txNum, it.namespace, it.collection);
      if (rwset) out.push({ ...it, rwset });
    }
    return encodePullResponse(out);
  }

  async function reconcileOnce(channelId: string): Promise<{ filled: number; remaining: number }> {
    const ch = o.channel(channelId);
    if (!ch) return { filled: 0, remaining: 0 };
    const ledger = ch.ledger;
    const store = privateStoreOf(ledger.stores());
    const all = await store.missing(500);
    const due: MissingEntry[] = [];
    for (const m of all) {
      const c = o.collection(channelId, m.namespace, m.collection);
      const expired = c !== undefined && c.blockToLive > 0 && m.blockNum + c.blockToLive + 1 <= ledger.height();
      if (!c?.memberOrgs.includes(o.mspId) || expired) {
        await store.dropMissing(m);
        continue;
      }
      if (m.notBefore <= now()) due.push(m);
    }
    if (due.length === 0) return { filled: 0, remaining: all.length };
    const key = (x: { blockNum: number; txNum: number; namespace: string; collection: string }) =>
      `${x.blockNum}:${x.txNum}:${x.namespace}:${x.collection}`;
    const pending = new Map(due.map((m) => [key(m), m]));
    let filled = 0;
    const peers = shuffle([...o.peers(channelId)]);
    for (const peer of peers) {
      const ask = [...pending.values()].filter((m) => isMember(channelId, m.namespace, m.collection, peer.mspId));
      if (ask.length === 0) continue;
      let got: PulledItem[];
      try {
        got = await o.transport.pull(peer, { channelId, items: ask.slice(0, 200) }, timeoutMs);
      } catch (e) {
        log.debug({ channel: channelId, peer: peer.endpoint, err: (e as Error).message }, 'private data pull failed');
        continue;
      }
      for (const item of got) {
        const m = pending.get(key(item));
        if (!m) continue;
        const block = await ledger.getBlock(item.blockNum);
        const hashes = block
          ? txCollectionHashes(block, item.txNum).find(
              (h) => h.namespace === item.namespace && h.collection === item.collection,
            )
          : undefined;
        let ok = false;
        try {
          ok = hashes !== undefined && writesMatchHashes(decodeKVRWSet(item.rwset), hashes);
        } catch {
          ok = false;
        }
        if (!ok) {
          log.warn(
            { channel: channelId, peer: peer.endpoint, item: key(item) },
            'pulled private data does not match the block hashes',
          );
          continue;
        }
        await ledger.writeBetweenBlocks((batch, height) =>
          store.prepareReconciled(batch, m, decodeKVRWSet(item.rwset), height),
        );
        pending.delete(key(item));
        filled++;
      }
      if (pending.size === 0) break;
    }
    for (const m of pending.values()) {
      await store.recordAttempt(m, now() + Math.min(maxBackoff, 1000 * 2 ** Math.min(m.attempts, 16)));
    }
    if (filled > 0) log.info({ channel: channelId, filled, remaining: pending.size }, 'private data reconciled');
    return { filled, remaining: all.length - filled };
  }

  function reconcile(channelId: string) {
    const r = running.get(channelId);
    if (r) return r;
    const p = reconcileOnce(channelId)
      .catch((e) => {
        log.warn({ channel: channelId, err: (e as Error).message }, 'private data reconciliation failed');
        return { filled: 0, remaining: -1 };
      })
      .finally(() => running.delete(channelId));
    running.set(channelId, p);
    return p;
  }

  function scheduleSoon(channelId: string) {
    if (stopped || soon.has(channelId)) return;
    const t = setTimeout(() => {
      soon.delete(channelId);
      void reconcile(channelId);
    }, 500);
    t.unref();
    soon.set(channelId, t);
  }

  return {
    distribute,
    ledgerHook,
    handle,
    reconcile,
    blockPrivateData,
    needsPrivateData,
    stageBlockPrivateData,
    store(channelId) {
      const ch = o.channel(channelId);
      return ch ? privateStoreOf(ch.ledger.stores()) : undefined;
    },
    start(channels) {
      const interval = o.reconcileIntervalMs ?? 3_000;
      const tick = () => {
        if (stopped) return;
        void Promise.all(channels().map((c) => reconcile(c))).finally(() => {
          if (!stopped) timer = setTimeout(tick, interval).unref();
        });
      };
      timer = setTimeout(tick, 200).unref();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      for (const t of soon.values()) clearTimeout(t);
      await Promise.all([...running.values()]);
    },
  };
}
