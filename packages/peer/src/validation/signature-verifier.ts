/**
 * Batch ECDSA P-256 / SHA-256 signature verification for block validation: a pool of worker threads
 * running node:crypto, with a main-thread path for batches too small to pay for a worker round trip,
 * and an LRU of results so a signature checked at endorsement time or in an earlier block (the same
 * endorsement is often in many places) is verified once.
 *
 * Loom's signature rule (common/crypto/signature-der.ts): strict DER and low-S, so a high-S twin of a
 * valid signature is invalid. That check runs here on the main thread before any math; workers only
 * do the OpenSSL verify.
 *
 * The worker is started from source text (`new Worker(code, { eval: true })`) that uses node: modules
 * only, so the same code runs under vitest (TypeScript sources) and from the compiled dist with no
 * separate worker file to build, copy or resolve.
 */
import { createPublicKey, type KeyObject, hash as nodeHash, verify as nodeVerify } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { concatBytes, hashConcat } from '@loom/common';
import { isStrictLowSDer } from '@loom/common/crypto/signature-der';

export interface SignatureVerificationItem {
  /** The signer's certificate (its subject key is used); either this or `publicKeyDer`. */
  readonly certPem?: string;
  /** SubjectPublicKeyInfo DER of the signer's key. */
  readonly publicKeyDer?: Uint8Array;
  readonly message: Uint8Array;
  /**
   * When set, the signed bytes are `message ‖ messageTail` (an endorsement: response payload ‖
   * endorser), so callers need not build the concatenation.
   */
  readonly messageTail?: Uint8Array;
  /** DER ECDSA signature over SHA-256(message ‖ messageTail). */
  readonly signature: Uint8Array;
}

export interface SignatureVerifier {
  /** One answer per item, in order: true only for a strict-DER, low-S P-256 signature that verifies. */
  verifyMany(items: readonly SignatureVerificationItem[]): Promise<boolean[]>;
}

export interface SignatureVerifierStats {
  /** Items answered from the result cache (or by an identical item earlier in the same batch). */
  readonly cacheHits: number;
  /** Items rejected before any math: not strict DER, or high-S. */
  readonly rejectedEncoding: number;
  /** Signatures verified on the main thread. */
  readonly mainThreadVerified: number;
  /** Signatures verified in worker threads. */
  readonly workerVerified: number;
  /** Messages sent to workers. */
  readonly workerBatches: number;
  /** Signatures this process made itself, remembered as valid (`rememberOwn`). */
  readonly rememberedOwn: number;
}

export interface SignatureVerifierPool extends SignatureVerifier {
  stats(): SignatureVerifierStats;
  /**
   * Records a signature this process has just made (an endorsement this peer signed) as valid, so a
   * block that carries it is not verified again: a peer that endorses a transaction then verifies
   * only the other endorsements and the creator's signature when it commits it.
   *
   * Only for signatures made here, over exactly `message ‖ messageTail`, with the key of the given
   * certificate. The first signature remembered for a certificate is verified (once, on this
   * thread): a signing key that does not match its certificate is never trusted, and its
   * signatures are verified like anyone's. A signature whose encoding blocks reject (not strict
   * DER, or high S) is not remembered.
   */
  rememberOwn(item: SignatureVerificationItem): void;
  /** Stops the worker threads; later calls verify on the main thread. */
  close(): Promise<void>;
}

export interface SignatureVerifierOptions {
  /** Worker threads. Default: `os.availableParallelism()`; 0 verifies on the main thread only. */
  readonly poolSize?: number;
  /** Batches with fewer uncached signatures than this are verified on the main thread. Default 16. */
  readonly minWorkerBatch?: number;
  /** Fewest signatures per worker message when splitting a batch. Default 8. */
  readonly minChunk?: number;
  /** Verification results remembered. Default 100,000. */
  readonly cacheSize?: number;
}

// The worker: CommonJS evaluated from a string, node: built-ins only. A key that is not P-256 or
// does not parse verifies nothing. A message carries the chunk's distinct keys once (`keys`), and
// its messages and signatures packed in one transferred buffer (`data`) described by `index`:
// per item [key slot, message offset, message length, signature offset, signature length].
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createPublicKey, verify, hash } = require('node:crypto');
const keys = new Map();
function keyOf(k) {
  let key = keys.get(k.id);
  if (key !== undefined) return key;
  try {
    const o = k.pem !== undefined ? createPublicKey(k.pem) : createPublicKey({ key: Buffer.from(k.der), format: 'der', type: 'spki' });
    key = o.asymmetricKeyType === 'ec' && o.asymmetricKeyDetails && o.asymmetricKeyDetails.namedCurve === 'prime256v1' ? o : null;
  } catch { key = null; }
  if (keys.size >= 4096) keys.delete(keys.keys().next().value);
  keys.set(k.id, key);
  return key;
}
parentPort.on('message', (msg) => {
  const ix = msg.index;
  const n = ix.length / 5;
  const data = Buffer.from(msg.data);
  const chunkKeys = msg.keys.map(keyOf);
  // Per item: 1 byte verified or not, then the message's SHA-256 (the main thread's result cache).
  const results = new Uint8Array(n * 33);
  for (let i = 0; i < n; i++) {
    const m = data.subarray(ix[i * 5 + 1], ix[i * 5 + 1] + ix[i * 5 + 2]);
    results.set(hash('sha256', m, 'buffer'), n + i * 32);
    const key = chunkKeys[ix[i * 5]];
    if (key === null || key === undefined) continue;
    const s = data.subarray(ix[i * 5 + 3], ix[i * 5 + 3] + ix[i * 5 + 4]);
    try { results[i] = verify('sha256', m, key, s) ? 1 : 0; } catch { results[i] = 0; }
  }
  parentPort.postMessage({ id: msg.id, results }, [results.buffer]);
});
`;

interface KeyRef {
  /**
   * Number naming the key material for the workers' key cache and the result cache (never reused,
   * and one reference only ever holds one key material).
   */
  readonly id: number;
  readonly pem?: string;
  readonly der?: Uint8Array;
}
interface Answer {
  readonly ok: boolean;
  /** SHA-256 of the message. */
  readonly digest: Uint8Array;
}
interface WireItem {
  readonly key: KeyRef;
  readonly message: Uint8Array;
  readonly tail: Uint8Array | undefined;
  readonly signature: Uint8Array;
}

/**
 * A bounded cache in two generations: entries go into the young map; when it holds half the limit
 * it becomes the old one and the previous old one is dropped. A hit in the old generation moves the
 * entry back to the young one. Close to LRU, at one Map operation per set (an exact LRU deletes and
 * re-inserts on every access, which at thousands of signatures per block showed in profiles).
 */
class GenerationalCache<V> {
  #young = new Map<string, V>();
  #old = new Map<string, V>();
  readonly #half: number;
  constructor(readonly limit: number) {
    this.#half = Math.max(1, Math.floor(limit / 2));
  }
  get(k: string): V | undefined {
    const v = this.#young.get(k);
    if (v !== undefined) return v;
    const o = this.#old.get(k);
    if (o !== undefined) this.set(k, o);
    return o;
  }
  set(k: string, v: V): void {
    if (this.limit <= 0) return;
    if (this.#young.size >= this.#half) {
      this.#old = this.#young;
      this.#young = new Map();
    }
    this.#young.set(k, v);
  }
}

interface PoolWorker {
  readonly worker: Worker;
  readonly pending: Map<number, { resolve: (r: Uint8Array) => void; reject: (e: unknown) => void }>;
}

let nextKeyId = 0;

function makeKeyRef(pem: string | undefined, der: Uint8Array | undefined): KeyRef {
  const id = nextKeyId++;
  return pem !== undefined ? { id, pem } : { id, der: der ?? new Uint8Array(0) };
}

/**
 * The result cache is keyed by the signature alone (its bytes as a latin1 string, ~72 characters)
 * and each entry says for which signer and message digest it holds: a lookup that misses (nearly
 * every signature of a new block) costs one short string, not a hash of the message. The digest is
 * computed by the worker that verifies, and on this thread only when an entry is found.
 */
interface CachedResult {
  /** The key reference's id (never reused for other key material). */
  readonly keyId: number;
  /** SHA-256 of the message. */
  readonly digest: Uint8Array;
  readonly ok: boolean;
}

function signatureKey(signature: Uint8Array): string {
  return Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength).toString('latin1');
}

const sha256Buffer = (data: Uint8Array): Uint8Array => nodeHash('sha256', data, 'buffer');

function digestOf(message: Uint8Array, tail: Uint8Array | undefined): Uint8Array {
  return tail === undefined || tail.length === 0 ? sha256Buffer(message) : hashConcat(sha256Buffer, message, tail);
}

function signedBytes(w: WireItem): Uint8Array {
  return w.tail === undefined || w.tail.length === 0 ? w.message : concatBytes(w.message, w.tail);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** Strict DER and low-S, Loom's encoding rule; false means invalid without doing the math. */
function encodingAcceptable(signature: Uint8Array): boolean {
  return isStrictLowSDer(signature);
}

class NodeSignatureVerifier implements SignatureVerifierPool {
  readonly #poolSize: number;
  readonly #minWorkerBatch: number;
  readonly #minChunk: number;
  readonly #results: GenerationalCache<CachedResult>;
  readonly #keys = new GenerationalCache<KeyObject | null>(4096);
  /** Key references by certificate PEM or base64 SPKI: computed once per signer, not per signature. */
  readonly #keyRefs = new GenerationalCache<KeyRef>(4096);
  #workers: PoolWorker[] = [];
  #closed = false;
  #nextId = 0;
  #next = 0;
  #stats = {
    cacheHits: 0,
    rejectedEncoding: 0,
    mainThreadVerified: 0,
    workerVerified: 0,
    workerBatches: 0,
    rememberedOwn: 0,
  };
  /** Key reference id → whether a signature remembered for it verified (`rememberOwn`). Few entries: this process's own keys. */
  readonly #ownKeys = new Map<number, boolean>();

  constructor(options: SignatureVerifierOptions) {
    this.#poolSize = Math.max(0, options.poolSize ?? availableParallelism());
    this.#minWorkerBatch = Math.max(1, options.minWorkerBatch ?? 16);
    this.#minChunk = Math.max(1, options.minChunk ?? 8);
    this.#results = new GenerationalCache(options.cacheSize ?? 100_000);
  }

  stats(): SignatureVerifierStats {
    return { ...this.#stats };
  }

  async verifyMany(items: readonly SignatureVerificationItem[]): Promise<boolean[]> {
    const out = new Array<boolean>(items.length).fill(false);
    // Distinct uncached work, and which output slots each answer fills.
    const work: WireItem[] = [];
    const workKeys: string[] = [];
    const slots: number[][] = [];
    const inBatch = new Map<string, number>();
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const key = this.#keyRefOf(item);
      if (!key || !(item.message instanceof Uint8Array) || !(item.signature instanceof Uint8Array)) continue;
      const tail = item.messageTail;
      if (tail !== undefined && !(tail instanceof Uint8Array)) continue;
      if (!encodingAcceptable(item.signature)) {
        this.#stats.rejectedEncoding++;
        continue;
      }
      const sk = signatureKey(item.signature);
      const cached = this.#results.get(sk);
      if (cached !== undefined && cached.keyId === key.id && sameBytes(cached.digest, digestOf(item.message, tail))) {
        this.#stats.cacheHits++;
        out[i] = cached.ok;
        continue;
      }
      const w = inBatch.get(sk);
      if (
        w !== undefined &&
        work[w]!.key.id === key.id &&
        sameBytes(signedBytes(work[w]!), tail === undefined ? item.message : concatBytes(item.message, tail))
      ) {
        this.#stats.cacheHits++;
        slots[w]!.push(i);
        continue;
      }
      // The same signature over another message or by another signer: verified on its own.
      if (w === undefined) inBatch.set(sk, work.length);
      work.push({ key, message: item.message, tail, signature: item.signature });
      workKeys.push(sk);
      slots.push([i]);
    }
    if (work.length === 0) return out;

    const answers = await this.#verifyWork(work);
    for (let w = 0; w < answers.length; w++) {
      const { ok, digest } = answers[w]!;
      this.#results.set(workKeys[w]!, { keyId: work[w]!.key.id, digest, ok });
      for (const i of slots[w]!) out[i] = ok;
    }
    return out;
  }

  rememberOwn(item: SignatureVerificationItem): void {
    const key = this.#keyRefOf(item);
    const tail = item.messageTail;
    if (!key || !(item.message instanceof Uint8Array) || !(item.signature instanceof Uint8Array)) return;
    if (tail !== undefined && !(tail instanceof Uint8Array)) return;
    if (!encodingAcceptable(item.signature)) return;
    let trusted = this.#ownKeys.get(key.id);
    if (trusted === undefined) {
      const [proof] = this.#verifyHere([{ key, message: item.message, tail, signature: item.signature }]);
      trusted = proof!.ok;
      if (this.#ownKeys.size >= 64) this.#ownKeys.clear();
      this.#ownKeys.set(key.id, trusted);
    }
    if (!trusted) return;
    this.#results.set(signatureKey(item.signature), { keyId: key.id, digest: digestOf(item.message, tail), ok: true });
    this.#stats.rememberedOwn++;
  }

  #keyRefOf(item: SignatureVerificationItem): KeyRef | undefined {
    let id: string;
    if (typeof item.certPem === 'string') id = item.certPem;
    else if (item.publicKeyDer instanceof Uint8Array) id = `der:${Buffer.from(item.publicKeyDer).toString('base64')}`;
    else return undefined;
    let ref = this.#keyRefs.get(id);
    if (ref === undefined) {
      ref =
        typeof item.certPem === 'string'
          ? makeKeyRef(item.certPem, undefined)
          : makeKeyRef(undefined, item.publicKeyDer);
      this.#keyRefs.set(id, ref);
    }
    return ref;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const workers = this.#workers;
    this.#workers = [];
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }

  async #verifyWork(work: WireItem[]): Promise<Answer[]> {
    if (this.#closed || this.#poolSize === 0 || work.length < this.#minWorkerBatch) return this.#verifyHere(work);
    const chunks = Math.min(this.#poolSize, Math.ceil(work.length / this.#minChunk));
    const size = Math.ceil(work.length / chunks);
    const parts: Promise<Answer[]>[] = [];
    for (let start = 0; start < work.length; start += size) {
      const chunk = work.slice(start, start + size);
      parts.push(
        this.#send(chunk).then(
          (r) => {
            this.#stats.workerVerified += chunk.length;
            const n = chunk.length;
            const answers = new Array<Answer>(n);
            for (let i = 0; i < n; i++) {
              answers[i] = { ok: r[i] === 1, digest: r.subarray(n + i * 32, n + (i + 1) * 32) };
            }
            return answers;
          },
          // A worker that died or could not start: the answer must not depend on it.
          () => this.#verifyHere(chunk),
        ),
      );
    }
    return (await Promise.all(parts)).flat();
  }

  #verifyHere(work: WireItem[]): Answer[] {
    this.#stats.mainThreadVerified += work.length;
    return work.map((w) => {
      const digest = digestOf(w.message, w.tail);
      const key = this.#keyObject(w.key);
      if (key === null) return { ok: false, digest };
      try {
        return { ok: nodeVerify('sha256', signedBytes(w), key, w.signature), digest };
      } catch {
        return { ok: false, digest };
      }
    });
  }

  #keyObject(ref: KeyRef): KeyObject | null {
    const hit = this.#keys.get(`${ref.id}`);
    if (hit !== undefined) return hit;
    let key: KeyObject | null;
    try {
      const k =
        ref.pem !== undefined
          ? createPublicKey(ref.pem)
          : createPublicKey({ key: Buffer.from(ref.der ?? new Uint8Array(0)), format: 'der', type: 'spki' });
      key = k.asymmetricKeyType === 'ec' && k.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? k : null;
    } catch {
      key = null;
    }
    this.#keys.set(`${ref.id}`, key);
    return key;
  }

  #send(chunk: WireItem[]): Promise<Uint8Array> {
    const pw = this.#pickWorker();
    const id = this.#nextId++;
    this.#stats.workerBatches++;
    return new Promise<Uint8Array>((resolve, reject) => {
      pw.pending.set(id, { resolve, reject });
      // A worker with work outstanding keeps the process alive; an idle one does not.
      if (pw.pending.size === 1) pw.worker.ref();
      // Distinct keys once; messages and signatures packed into one buffer that is moved, not copied.
      const slots = new Map<number, number>();
      const keys: { id: number; pem?: string; der?: Uint8Array }[] = [];
      let size = 0;
      for (const w of chunk) size += w.message.length + (w.tail?.length ?? 0) + w.signature.length;
      // Not zero-filled (every byte is written below) and never from Buffer's shared pool, so its
      // ArrayBuffer is this buffer alone and can be moved to the worker.
      const data = Buffer.allocUnsafeSlow(size);
      const index = new Uint32Array(chunk.length * 5);
      let at = 0;
      chunk.forEach((w, i) => {
        let slot = slots.get(w.key.id);
        if (slot === undefined) {
          slot = keys.length;
          slots.set(w.key.id, slot);
          keys.push(w.key.pem !== undefined ? { id: w.key.id, pem: w.key.pem } : { id: w.key.id, der: w.key.der! });
        }
        index[i * 5] = slot;
        index[i * 5 + 1] = at;
        index[i * 5 + 2] = w.message.length + (w.tail?.length ?? 0);
        data.set(w.message, at);
        at += w.message.length;
        if (w.tail !== undefined) {
          data.set(w.tail, at);
          at += w.tail.length;
        }
        index[i * 5 + 3] = at;
        index[i * 5 + 4] = w.signature.length;
        data.set(w.signature, at);
        at += w.signature.length;
      });
      pw.worker.postMessage({ id, keys, index, data: data.buffer }, [data.buffer, index.buffer]);
    });
  }

  #pickWorker(): PoolWorker {
    if (this.#workers.length < this.#poolSize) {
      const pw = this.#spawn();
      this.#workers.push(pw);
      return pw;
    }
    const pw = this.#workers[this.#next % this.#workers.length]!;
    this.#next++;
    return pw;
  }

  #spawn(): PoolWorker {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    const pw: PoolWorker = { worker, pending: new Map() };
    worker.unref();
    worker.on('message', (msg: { id: number; results: Uint8Array }) => {
      const p = pw.pending.get(msg.id);
      if (!p) return;
      pw.pending.delete(msg.id);
      if (pw.pending.size === 0) worker.unref();
      p.resolve(msg.results);
    });
    const fail = (e: unknown) => {
      this.#workers = this.#workers.filter((w) => w !== pw);
      for (const p of pw.pending.values()) p.reject(e);
      pw.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`signature worker exited with code ${code}`)));
    return pw;
  }
}

/** A pool of node:crypto verifier threads; `close()` it when the peer stops. */
export function createSignatureVerifier(options: SignatureVerifierOptions = {}): SignatureVerifierPool {
  return new NodeSignatureVerifier(options);
}
