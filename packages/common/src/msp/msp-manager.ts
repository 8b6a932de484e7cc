/**
 * A channel's MSPs. Turns serialized identities into validated ones and checks their signatures.
 * Validated identities are cached by (mspId, SHA-256 of the identity bytes); a cache hit is still
 * checked against the chain's validity window at the injected clock's `now`, and replacing an MSP
 * (new CRLs, new intermediates) drops every cached identity of that MSP.
 */
import { sha256Hex } from '../crypto/hash.js';
import { LoomError } from '../errors.js';
import { certMalformed, parseCertificate } from './certificate.js';
import { type Msp, OrgMsp, type ValidationResult } from './msp.js';
import { type Clock, type MspConfig, MspErrorCode, type SerializedIdentity, type ValidatedIdentity } from './types.js';

export interface MspManagerOptions {
  readonly clock?: Clock;
  /** Cached identities per MSP before the oldest is forgotten. Default 10,000. */
  readonly cacheSize?: number;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

export class MspManager {
  readonly #msps = new Map<string, OrgMsp>();
  readonly #cache = new Map<string, Map<string, ValidationResult>>();
  readonly #clock: Clock;
  readonly #cacheSize: number;

  constructor(configs: Iterable<MspConfig>, options: MspManagerOptions = {}) {
    this.#clock = options.clock ?? (() => new Date());
    this.#cacheSize = options.cacheSize ?? 10_000;
    for (const config of configs) {
      if (this.#msps.has(config.mspId)) {
        throw new LoomError(MspErrorCode.CONFIG_INVALID, `duplicate MSP ${config.mspId}`, {
          httpStatus: 400,
          details: { mspId: config.mspId },
        });
      }
      this.#msps.set(config.mspId, new OrgMsp(config));
    }
  }

  get mspIds(): string[] {
    return [...this.#msps.keys()];
  }

  has(mspId: string): boolean {
    return this.#msps.has(mspId);
  }

  /** The MSP for `mspId`, or MSP_UNKNOWN. */
  getMsp(mspId: string): Msp {
    const msp = this.#msps.get(mspId);
    if (!msp) {
      throw new LoomError(MspErrorCode.UNKNOWN, `unknown MSP ${JSON.stringify(mspId)}`, {
        httpStatus: 403,
        details: { mspId },
      });
    }
    return msp;
  }

  /** Adds or replaces one MSP (a config update); cached identities of that MSP are forgotten. */
  updateMsp(config: MspConfig): void {
    const msp = new OrgMsp(config);
    this.#msps.set(config.mspId, msp);
    this.#cache.delete(config.mspId);
  }

  removeMsp(mspId: string): void {
    this.#msps.delete(mspId);
    this.#cache.delete(mspId);
  }

  deserialize(serialized: SerializedIdentity): ValidatedIdentity {
    const { mspId, idBytes } = serialized ?? ({} as SerializedIdentity);
    if (typeof mspId !== 'string' || !(idBytes instanceof Uint8Array)) {
      throw certMalformed('serialized identity needs a string mspId and idBytes');
    }
    const msp = this.getMsp(mspId) as OrgMsp;
    const now = this.#clock();
    const key = sha256Hex(idBytes);
    let perMsp = this.#cache.get(mspId);
    const hit = perMsp?.get(key);
    if (hit) {
      const t = now.getTime();
      if (t >= hit.validFrom.getTime() && t <= hit.validUntil.getTime()) return hit.identity;
      // Outside its window: validate again so the caller gets the precise error.
      perMsp!.delete(key);
    }

    let pem: string;
    try {
      pem = utf8Decoder.decode(idBytes);
    } catch (e) {
      throw certMalformed('identity bytes are not UTF-8 PEM', e);
    }
    const result = msp.validateDetailed(parseCertificate(pem), now, idBytes);
    if (!perMsp) {
      perMsp = new Map();
      this.#cache.set(mspId, perMsp);
    }
    if (perMsp.size >= this.#cacheSize) {
      const oldest = perMsp.keys().next();
      if (!oldest.done) perMsp.delete(oldest.value);
    }
    perMsp.set(key, result);
    return result.identity;
  }

  /** Deserializes and validates `serialized`, then checks `sig` over `message`; returns the signer. */
  verifySignature(serialized: SerializedIdentity, message: Uint8Array, sig: Uint8Array): ValidatedIdentity {
    const identity = this.deserialize(serialized);
    identity.verify(message, sig);
    return identity;
  }
}
