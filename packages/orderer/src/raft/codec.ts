import { decode, encode } from 'cborg';
import { type Entry, type HardState, type Message, RaftError, type Snapshot } from './types.js';

/**
 * Deterministic CBOR (cborg's defaults: canonical map-key order, shortest integers) for what
 * crosses the wire (messages) or goes to disk (entries, hard state, snapshots). Optional fields
 * that are absent are omitted, never encoded as undefined.
 */

function fail(what: string): never {
  throw new RaftError('INVALID_ARGUMENT', `malformed raft ${what}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function num(o: Record<string, unknown>, k: string, what: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`${what}.${k}`);
  return v;
}

function str(o: Record<string, unknown>, k: string, what: string): string {
  const v = o[k];
  if (typeof v !== 'string') fail(`${what}.${k}`);
  return v;
}

function bool(o: Record<string, unknown>, k: string, what: string): boolean {
  const v = o[k];
  if (typeof v !== 'boolean') fail(`${what}.${k}`);
  return v;
}

function bytes(o: Record<string, unknown>, k: string, what: string): Uint8Array {
  const v = o[k];
  if (!(v instanceof Uint8Array)) fail(`${what}.${k}`);
  return v;
}

function strings(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) fail(what);
  return v as string[];
}

function toEntry(v: unknown): Entry {
  if (!isRecord(v)) fail('entry');
  const type = v.type;
  if (type !== 'normal' && type !== 'confChange') fail('entry.type');
  return { term: num(v, 'term', 'entry'), index: num(v, 'index', 'entry'), type, data: bytes(v, 'data', 'entry') };
}

function toSnapshot(v: unknown): Snapshot {
  if (!isRecord(v) || !isRecord(v.metadata)) fail('snapshot');
  const md = v.metadata;
  const cs = md.confState;
  if (!isRecord(cs)) fail('snapshot.confState');
  return {
    metadata: {
      index: num(md, 'index', 'snapshot'),
      term: num(md, 'term', 'snapshot'),
      confState: {
        voters: strings(cs.voters, 'confState.voters'),
        learners: strings(cs.learners, 'confState.learners'),
      },
    },
    data: bytes(v, 'data', 'snapshot'),
  };
}

function entryObject(e: Entry): Entry {
  return { term: e.term, index: e.index, type: e.type, data: e.data };
}

function snapshotObject(s: Snapshot): Snapshot {
  const { index, term, confState } = s.metadata;
  return {
    metadata: { index, term, confState: { voters: [...confState.voters], learners: [...confState.learners] } },
    data: s.data,
  };
}

export function encodeEntry(e: Entry): Uint8Array {
  return encode(entryObject(e));
}

export function decodeEntry(b: Uint8Array): Entry {
  return toEntry(decode(b));
}

export function encodeHardState(hs: HardState): Uint8Array {
  return encode({ term: hs.term, vote: hs.vote, commit: hs.commit });
}

export function decodeHardState(b: Uint8Array): HardState {
  const v = decode(b);
  if (!isRecord(v)) fail('hardState');
  return {
    term: num(v, 'term', 'hardState'),
    vote: str(v, 'vote', 'hardState'),
    commit: num(v, 'commit', 'hardState'),
  };
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  return encode(snapshotObject(s));
}

export function decodeSnapshot(b: Uint8Array): Snapshot {
  return toSnapshot(decode(b));
}

export function encodeMessage(m: Message): Uint8Array {
  const base = { type: m.type, from: m.from, to: m.to, term: m.term };
  switch (m.type) {
    case 'preVote':
    case 'vote':
      return encode({
        ...base,
        lastLogIndex: m.lastLogIndex,
        lastLogTerm: m.lastLogTerm,
        ...(m.transfer === true ? { transfer: true } : {}),
      });
    case 'preVoteResp':
    case 'voteResp':
      return encode({ ...base, reject: m.reject });
    case 'app':
      return encode({
        ...base,
        prevIndex: m.prevIndex,
        prevTerm: m.prevTerm,
        entries: m.entries.map(entryObject),
        commit: m.commit,
      });
    case 'appResp':
      return encode({ ...base, index: m.index, reject: m.reject, rejectHint: m.rejectHint, hintTerm: m.hintTerm });
    case 'heartbeat':
      return encode({ ...base, commit: m.commit });
    case 'heartbeatResp':
    case 'timeoutNow':
      return encode(base);
    case 'snapshot':
      return encode({ ...base, snapshot: snapshotObject(m.snapshot) });
  }
}

export function decodeMessage(b: Uint8Array): Message {
  const v = decode(b);
  if (!isRecord(v)) fail('message');
  const w = 'message';
  const from = str(v, 'from', w);
  const to = str(v, 'to', w);
  const term = num(v, 'term', w);
  const type = v.type;
  switch (type) {
    case 'preVote':
    case 'vote': {
      const lastLogIndex = num(v, 'lastLogIndex', w);
      const lastLogTerm = num(v, 'lastLogTerm', w);
      if (v.transfer === true) return { type, from, to, term, lastLogIndex, lastLogTerm, transfer: true };
      return { type, from, to, term, lastLogIndex, lastLogTerm };
    }
    case 'preVoteResp':
    case 'voteResp':
      return { type, from, to, term, reject: bool(v, 'reject', w) };
    case 'app': {
      const entries = v.entries;
      if (!Array.isArray(entries)) fail('message.entries');
      return {
        type,
        from,
        to,
        term,
        prevIndex: num(v, 'prevIndex', w),
        prevTerm: num(v, 'prevTerm', w),
        entries: entries.map(toEntry),
        commit: num(v, 'commit', w),
      };
    }
    case 'appResp':
      return {
        type,
        from,
        to,
        term,
        index: num(v, 'index', w),
        reject: bool(v, 'reject', w),
        rejectHint: num(v, 'rejectHint', w),
        hintTerm: num(v, 'hintTerm', w),
      };
    case 'heartbeat':
      return { type, from, to, term, commit: num(v, 'commit', w) };
    case 'heartbeatResp':
    case 'timeoutNow':
      return { type, from, to, term };
    case 'snapshot':
      return { type, from, to, term, snapshot: toSnapshot(v.snapshot) };
    default:
      return fail('message.type');
  }
}
