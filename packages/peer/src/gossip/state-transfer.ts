/**
 * State transfer: a new or lagging peer pulls the blocks it misses from peers that announced a
 * greater height, in bounded ranges, until it has caught up with the highest announcement. Every
 * block goes through the ledger's normal commit (orderer signatures, hash chain, validation), so a
 * source can make this peer wait but never make it commit a block the orderers did not sign.
 *
 * The I/O is injected (the gossip node, the ledger), so the loop is tested with in-memory fakes.
 */
import type { Bytes } from '@loom/common';

export interface StateTransferSource {
  readonly peer: string;
  /** The height the peer last announced. */
  readonly height: number;
}

export interface StateTransferDeps {
  height(): number;
  /** Peers to pull from, with their announced heights (re-read every round). */
  sources(): readonly StateTransferSource[];
  /** Blocks `from`..`from+count-1` from `peer` (fewer if it has fewer), and its current height. */
  fetchRange(peer: string, from: number, count: number): Promise<{ height: number; blocks: Bytes[] }>;
  /** Commits one block (throws when it does not verify or does not continue the ledger). */
  commit(block: Bytes, blockNumber: number, peer: string): Promise<void>;
  /** Largest range asked for at once. */
  readonly batchSize: number;
  /** Bound on rounds (ranges asked) per call. */
  readonly maxRounds?: number;
  readonly signal?: AbortSignal;
}

export interface StateTransferResult {
  readonly committed: number;
  readonly rounds: number;
  /** Peers that failed this call (an error, a block that did not commit, an empty answer). */
  readonly failed: readonly { peer: string; error: string }[];
}

/** Pulls until no source announces a height above this peer's, every source failed, or rounds run out. */
export async function catchUp(deps: StateTransferDeps): Promise<StateTransferResult> {
  const maxRounds = deps.maxRounds ?? 100_000;
  const failed: { peer: string; error: string }[] = [];
  const excluded = new Set<string>();
  let committed = 0;
  let rounds = 0;
  // The next range is asked for while the current one commits (one range ahead, same source).
  let prefetch: { peer: string; from: number; answer: Promise<{ height: number; blocks: Bytes[] }> } | undefined;
  while (!deps.signal?.aborted && rounds < maxRounds) {
    const h = deps.height();
    const ahead = deps
      .sources()
      .filter((s) => s.height > h && !excluded.has(s.peer))
      .sort((a, b) => b.height - a.height || (a.peer < b.peer ? -1 : 1));
    const source = ahead[0];
    if (!source) break;
    rounds++;
    const count = Math.max(1, Math.min(deps.batchSize, source.height - h));
    try {
      const ahead = prefetch?.peer === source.peer && prefetch.from === h ? prefetch.answer : undefined;
      prefetch = undefined;
      const r = await (ahead ?? deps.fetchRange(source.peer, h, count));
      if (r.blocks.length === 0) throw new Error(`no blocks from ${h} (announced height ${source.height})`);
      const nextFrom = h + r.blocks.length;
      const target = Math.max(source.height, r.height);
      if (target > nextFrom && rounds < maxRounds) {
        const answer = deps.fetchRange(source.peer, nextFrom, Math.min(deps.batchSize, target - nextFrom));
        answer.catch(() => undefined);
        prefetch = { peer: source.peer, from: nextFrom, answer };
      }
      let n = h;
      for (const block of r.blocks) {
        if (deps.signal?.aborted) break;
        // A block may have arrived meanwhile by push: commit only what still continues the ledger.
        if (deps.height() > n) {
          n++;
          continue;
        }
        await deps.commit(block, n, source.peer);
        committed++;
        n++;
      }
    } catch (e) {
      prefetch = undefined;
      failed.push({ peer: source.peer, error: (e as Error).message });
      excluded.add(source.peer);
    }
  }
  return { committed, rounds, failed };
}
