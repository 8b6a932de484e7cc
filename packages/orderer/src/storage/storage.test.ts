import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBlock, encodeBlock, GENESIS_PREVIOUS_HASH, isLoomError } from '@loom/common';
import { sha256 } from '@loom/common/crypto/hash';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Entry } from '../raft/types.js';
import { openBlockStore } from './block-store.js';
import { LevelKv } from './kv.js';
import { DurableRaftStorage } from './raft-log.js';

const entry = (index: number, term: number, fill = index): Entry => ({
  index,
  term,
  type: 'normal',
  data: new Uint8Array([fill]),
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loom-orderer-storage-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('DurableRaftStorage on level', () => {
  it('writes a term or vote change at once, a commit-only advance with the next write', async () => {
    let kv = await LevelKv.open(dir);
    let s = await DurableRaftStorage.open(kv, 'ch');
    await s.persist({ hardState: { term: 2, vote: 'a', commit: 0 }, entries: [entry(1, 2), entry(2, 2)] });
    await s.persist({ hardState: { term: 2, vote: 'a', commit: 2 } });
    // The view moves at once; on disk the commit index is volatile (Raft re-learns it from the leader).
    expect(s.hardState()).toEqual({ term: 2, vote: 'a', commit: 2 });
    await kv.close();
    kv = await LevelKv.open(dir);
    s = await DurableRaftStorage.open(kv, 'ch');
    expect(s.hardState()).toEqual({ term: 2, vote: 'a', commit: 0 });
    expect(s.lastIndex()).toBe(2);
    // With entries, or with a new term or vote, the hard state is written in the same batch.
    await s.persist({ hardState: { term: 2, vote: 'a', commit: 2 }, entries: [entry(3, 2)] });
    await s.persist({ hardState: { term: 3, vote: 'b', commit: 2 } });
    await kv.close();
    kv = await LevelKv.open(dir);
    s = await DurableRaftStorage.open(kv, 'ch');
    expect(s.hardState()).toEqual({ term: 3, vote: 'b', commit: 2 });
    expect(s.lastIndex()).toBe(3);
    await kv.close();
  });

  it('reopens with the same hard state, entries and snapshot', async () => {
    let kv = await LevelKv.open(dir);
    let s = await DurableRaftStorage.open(kv, 'ch');
    expect(s.isEmpty).toBe(true);
    await s.persist({
      hardState: { term: 2, vote: 'a', commit: 3 },
      entries: [entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)],
    });
    // A new leader's suffix replaces entries from index 3 on.
    await s.persist({ entries: [entry(3, 3, 33)], hardState: { term: 3, vote: 'b', commit: 3 } });
    await kv.close();

    kv = await LevelKv.open(dir);
    s = await DurableRaftStorage.open(kv, 'ch');
    expect(s.hardState()).toEqual({ term: 3, vote: 'b', commit: 3 });
    expect(s.firstIndex()).toBe(1);
    expect(s.lastIndex()).toBe(3);
    expect(s.entries(1, 4).map((e) => [e.index, e.term, e.data[0]])).toEqual([
      [1, 1, 1],
      [2, 1, 2],
      [3, 3, 33],
    ]);

    // Compaction drops the covered entries on disk too.
    await s.persist({ entries: [entry(4, 3), entry(5, 3)] });
    await s.persistCompaction({
      metadata: { index: 3, term: 3, confState: { voters: ['a', 'b'], learners: [] } },
      data: new Uint8Array([9]),
    });
    await kv.close();
    kv = await LevelKv.open(dir);
    s = await DurableRaftStorage.open(kv, 'ch');
    expect(s.snapshot().metadata).toEqual({ index: 3, term: 3, confState: { voters: ['a', 'b'], learners: [] } });
    expect(s.firstIndex()).toBe(4);
    expect(s.lastIndex()).toBe(5);
    expect(s.term(3)).toBe(3);

    // A snapshot from the leader replaces the whole log.
    await s.persist({
      snapshot: {
        metadata: { index: 10, term: 4, confState: { voters: ['a'], learners: [] } },
        data: new Uint8Array(),
      },
    });
    await kv.close();
    kv = await LevelKv.open(dir);
    s = await DurableRaftStorage.open(kv, 'ch');
    expect(s.firstIndex()).toBe(11);
    expect(s.lastIndex()).toBe(10);
    // Other channels are untouched and separate.
    expect((await DurableRaftStorage.open(kv, 'ch2')).isEmpty).toBe(true);
    await kv.close();
  });
});

describe('BlockStore on level', () => {
  it('appends chained blocks, refuses a fork, and reopens at the same height', async () => {
    let kv = await LevelKv.open(dir);
    let store = await openBlockStore(kv, 'ch');
    const b0 = buildBlock(0, GENESIS_PREVIOUS_HASH, [new Uint8Array([1])], new Uint8Array(), sha256);
    await store.append(encodeBlock(b0));
    const b1 = buildBlock(1, sha256(b0.header), [new Uint8Array([2])], new Uint8Array(), sha256);
    const waiting = store.waitFor(1);
    await store.append(encodeBlock(b1));
    expect(await waiting).toBe(true);
    const fork = buildBlock(2, sha256(b0.header), [], new Uint8Array(), sha256);
    await expect(store.append(encodeBlock(fork))).rejects.toSatisfy((e) => isLoomError(e, 'ORDERER_CHAIN_BROKEN'));
    await kv.close();

    kv = await LevelKv.open(dir);
    store = await openBlockStore(kv, 'ch');
    expect(store.height).toBe(2);
    expect(store.lastHash).toEqual(sha256(b1.header));
    expect(new Uint8Array((await store.get(0))!)).toEqual(encodeBlock(b0));
    expect(await store.get(2)).toBeUndefined();
    const ac = new AbortController();
    const never = store.waitFor(5, ac.signal);
    ac.abort();
    expect(await never).toBe(false);
    await kv.close();
  });
});
