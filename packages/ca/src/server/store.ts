/**
 * The CA's state behind a narrow key-value interface: typed buckets for identities, certificates
 * and affiliations over any `KvStore`. `level` appears only in `openLevelKvStore`; tests and tools
 * can use `createMemoryKvStore`. Every API call stages its writes in one `CaWriteBatch`, committed
 * atomically, so a call that fails leaves nothing partly written.
 */
import { Level } from 'level';
import type { Attribute, IdentityType } from '../protocol.js';

export type KvOp =
  | { readonly type: 'put'; readonly key: string; readonly value: string }
  | { readonly type: 'del'; readonly key: string };

export interface KvStore {
  get(key: string): Promise<string | undefined>;
  /** Applies every op or none. */
  batch(ops: readonly KvOp[]): Promise<void>;
  /** Entries whose key starts with `prefix`, in key order. */
  entries(prefix: string): AsyncIterable<[string, string]>;
  close(): Promise<void>;
}

export async function openLevelKvStore(path: string): Promise<KvStore> {
  const db = new Level<string, string>(path, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  await db.open();
  return {
    get: (key) => db.get(key),
    batch: (ops) => db.batch(ops.map((o) => ({ ...o }))),
    async *entries(prefix) {
      for await (const entry of db.iterator({ gte: prefix, lt: `${prefix}\uffff` })) yield entry;
    },
    close: () => db.close(),
  };
}

export function createMemoryKvStore(): KvStore {
  const map = new Map<string, string>();
  return {
    get: async (key) => map.get(key),
    batch: async (ops) => {
      for (const o of ops) {
        if (o.type === 'put') map.set(o.key, o.value);
        else map.delete(o.key);
      }
    },
    async *entries(prefix) {
      const keys = [...map.keys()].filter((k) => k.startsWith(prefix)).sort();
      for (const k of keys) {
        const v = map.get(k);
        if (v !== undefined) yield [k, v];
      }
    },
    close: async () => {},
  };
}

export interface IdentityRecord {
  readonly id: string;
  readonly type: IdentityType;
  readonly affiliation: string;
  readonly attrs: readonly Attribute[];
  /** -1: unlimited. */
  readonly maxEnrollments: number;
  readonly enrollments: number;
  /** scrypt(secret, salt), both base64. */
  readonly secretHash: string;
  readonly secretSalt: string;
  /** Revoked identities can neither enroll nor authenticate. */
  readonly revoked: boolean;
  readonly createdAt: string;
}

export interface CertificateRecord {
  /** Lowercase hex without leading zeros (the MSP's spelling). */
  readonly serial: string;
  readonly id: string;
  /** Lowercase hex key identifier of the issuing CA. */
  readonly aki: string;
  readonly profile: 'ecert' | 'tls';
  readonly pem: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly revokedAt?: string;
  readonly reason?: string;
}

export interface AffiliationRecord {
  readonly name: string;
}

const ID = 'identity/';
const CERT = 'cert/';
const AFF = 'affiliation/';

/** Writes staged by one call; nothing reaches the store before `commit`. */
export class CaWriteBatch {
  readonly ops: KvOp[] = [];
  putIdentity(r: IdentityRecord): this {
    this.ops.push({ type: 'put', key: ID + r.id, value: JSON.stringify(r) });
    return this;
  }
  deleteIdentity(id: string): this {
    this.ops.push({ type: 'del', key: ID + id });
    return this;
  }
  putCertificate(r: CertificateRecord): this {
    this.ops.push({ type: 'put', key: CERT + r.serial, value: JSON.stringify(r) });
    return this;
  }
  putAffiliation(r: AffiliationRecord): this {
    this.ops.push({ type: 'put', key: AFF + r.name, value: JSON.stringify(r) });
    return this;
  }
  deleteAffiliation(name: string): this {
    this.ops.push({ type: 'del', key: AFF + name });
    return this;
  }
}

export class CaStore {
  readonly #kv: KvStore;
  constructor(kv: KvStore) {
    this.#kv = kv;
  }

  async #getJson<T>(key: string): Promise<T | undefined> {
    const v = await this.#kv.get(key);
    return v === undefined ? undefined : (JSON.parse(v) as T);
  }

  async #all<T>(prefix: string): Promise<T[]> {
    const out: T[] = [];
    for await (const [, v] of this.#kv.entries(prefix)) out.push(JSON.parse(v) as T);
    return out;
  }

  getIdentity(id: string): Promise<IdentityRecord | undefined> {
    return this.#getJson(ID + id);
  }
  listIdentities(): Promise<IdentityRecord[]> {
    return this.#all(ID);
  }
  getCertificate(serial: string): Promise<CertificateRecord | undefined> {
    return this.#getJson(CERT + serial);
  }
  listCertificates(): Promise<CertificateRecord[]> {
    return this.#all(CERT);
  }
  async certificatesOf(id: string): Promise<CertificateRecord[]> {
    return (await this.listCertificates()).filter((c) => c.id === id);
  }
  getAffiliation(name: string): Promise<AffiliationRecord | undefined> {
    return this.#getJson(AFF + name);
  }
  listAffiliations(): Promise<AffiliationRecord[]> {
    return this.#all(AFF);
  }
  commit(batch: CaWriteBatch): Promise<void> {
    return batch.ops.length === 0 ? Promise.resolve() : this.#kv.batch(batch.ops);
  }
  close(): Promise<void> {
    return this.#kv.close();
  }
}
