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
import { isStrictLowSDer } from '@loom/common/crypto/signature-der';

export interface SignatureVerificationItem {
  /** The signer's certificate (its subject key is used); either this or `publicKeyDer`. */
  readonly certPem?: string;
  /** SubjectPublicKeyInfo DER of the signer's key. */
  readonly publicKeyDer?: Uint8Array;
  readonly message: Uint8Array;
  /** DER ECDSA signature over SHA-256(message). */
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
}

export interface SignatureVerifierPool extends SignatureVerifier {
  stats(): SignatureVerifierStats;
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
const { createPublicKey, verify } = require('node:crypto');
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
  const results = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const key = chunkKeys[ix[i * 5]];
    if (key === null || key === undefined) continue;
    const m = data.subarray(ix[i * 5 + 1], ix[i * 5 + 1] + ix[i * 5 + 2]);
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
interface WireItem {
  readonly key: KeyRef;
  readonly message: Uint8Array;
  readonly signature: Uint8Array;
}

class LruCache<V> {
  readonly #map = new Map<string, V>();
  constructor(readonly limit: number) {}
  get(k: string): V | undefined {
    const v = this.#map.get(k);
    if (v !== undefined) {
      this.#map.delete(k);
      this.#map.set(k, v);
    }
    return v;
  }
  set(k: string, v: V): void {
    if (this.limit <= 0) return;
    this.#map.delete(k);
    if (this.#map.size >= this.limit) {
      const oldest = this.#map.keys().next();
      if (!oldest.done) this.#map.delete(oldest.value);
    }
    this.#map.set(k, v);
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
 * One entry per (signer, signature, message): the key reference's id (never reused for other key
 * material), the signature itself (strict DER, checked before this, so self-delimiting) and the
 * message's SHA-256 — one one-shot hash per item, no hash object.
 */
function resultCacheKey(key: KeyRef, item: SignatureVerificationItem): string {
  const sig = Buffer.from(item.signature.buffer, item.signature.byteOffset, item.signature.byteLength);
  return `${key.id}:${sig.toString('latin1')}${nodeHash('sha256', item.message, 'base64')}`;
}

/** Strict DER and low-S, Loom's encoding rule; false means invalid without doing the math. */
function encodingAcceptable(signature: Uint8Array): boolean {
  return isStrictLowSDer(signature);
}

class NodeSignatureVerifier implements SignatureVerifierPool {
  readonly #poolSize: number;
  readonly #minWorkerBatch: number;
  readonly #minChunk: number;
  readonly #results: LruCache<boolean>;
  readonly #keys = new LruCache<KeyObject | null>(4096);
  /** Key references by certificate PEM or base64 SPKI: computed once per signer, not per signature. */
  readonly #keyRefs = new LruCache<KeyRef>(4096);
  #workers: PoolWorker[] = [];
  #closed = false;
  #nextId = 0;
  #next = 0;
  #stats = { cacheHits: 0, rejectedEncoding: 0, mainThreadVerified: 0, workerVerified: 0, workerBatches: 0 };

  constructor(options: SignatureVerifierOptions) {
    this.#poolSize = Math.max(0, options.poolSize ?? availableParallelism());
    this.#minWorkerBatch = Math.max(1, options.minWorkerBatch ?? 16);
    this.#minChunk = Math.max(1, options.minChunk ?? 8);
    this.#results = new LruCache(options.cacheSize ?? 100_000);
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
    items.forEach((item, i) => {
      const key = this.#keyRefOf(item);
      if (!key || !(item.message instanceof Uint8Array) || !(item.signature instanceof Uint8Array)) return;
      if (!encodingAcceptable(item.signature)) {
        this.#stats.rejectedEncoding++;
        return;
      }
      const ck = resultCacheKey(key, item);
      const cached = this.#results.get(ck);
      if (cached !== undefined) {
        this.#stats.cacheHits++;
        out[i] = cached;
        return;
      }
      const w = inBatch.get(ck);
      if (w !== undefined) {
        this.#stats.cacheHits++;
        slots[w]!.push(i);
        return;
      }
      inBatch.set(ck, work.length);
      work.push({ key, message: item.message, signature: item.signature });
      workKeys.push(ck);
      slots.push([i]);
    });
    if (work.length === 0) return out;

    const answers = await this.#verifyWork(work);
    answers.forEach((ok, w) => {
      this.#results.set(workKeys[w]!, ok);
      for (const i of slots[w]!) out[i] = ok;
    });
    return out;
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

  async #verifyWork(work: WireItem[]): Promise<boolean[]> {
    if (this.#closed || this.#poolSize === 0 || work.length < this.#minWorkerBatch) return this.#verifyHere(work);
    const chunks = Math.min(this.#poolSize, Math.ceil(work.length / this.#minChunk));
    const size = Math.ceil(work.length / chunks);
    const parts: Promise<boolean[]>[] = [];
    for (let start = 0; start < work.length; start += size) {
      const chunk = work.slice(start, start + size);
      parts.push(
        this.#send(chunk).then(
          (r) => {
            this.#stats.workerVerified += chunk.length;
            return Array.from(r, (x) => x === 1);
          },
          // A worker that died or could not start: the answer must not depend on it.
          () => this.#verifyHere(chunk),
        ),
      );
    }
    return (await Promise.all(parts)).flat();
  }

  #verifyHere(work: WireItem[]): boolean[] {
    this.#stats.mainThreadVerified += work.length;
    return work.map((w) => {
      const key = this.#keyObject(w.key);
      if (key === null) return false;
      try {
        return nodeVerify('sha256', w.message, key, w.signature);
      } catch {
        return false;
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
      for (const w of chunk) size += w.message.length + w.signature.length;
      const data = new Uint8Array(size);
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
        index[i * 5 + 2] = w.message.length;
        data.set(w.message, at);
        at += w.message.length;
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
