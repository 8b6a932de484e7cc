/**
 * Client for the CA's REST API. Keys are generated here and never leave the process: the CA only
 * ever sees a PKCS#10 request signed by the new key. Calls other than `cainfo` and `enroll` carry a
 * token signed by the caller's enrolled key (see protocol.ts).
 */
import { randomBytes, webcrypto } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { LoomError } from '@loom/common';
import { privateKeyFromPem } from '@loom/common/crypto/signing';
import { x509 } from '@loom/common/msp/x509';
import { CaErrorCode } from '../errors.js';
import {
  API_PREFIX,
  type AffiliationInfo,
  type Attribute,
  type AttributeRequest,
  type CaInfoResult,
  type CaResponse,
  type CertificateInfo,
  createToken,
  type EnrollResult,
  type IdentityInfo,
  type IdentityType,
  type ModifyIdentityRequest,
  type RevokeResult,
  Routes,
  routePath,
} from '../protocol.js';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DEFAULT_TIMEOUT_MS = 30_000;

/** An enrolled identity: what signs tokens for registrar calls. */
export interface CaIdentity {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface CsrOptions {
  /** Defaults to the enrollment ID (the CA sets CN to it anyway). */
  readonly cn?: string;
  /** C, ST, L, O proposals (the CA decides CN and OU). */
  readonly names?: ReadonlyArray<Readonly<Record<string, string>>>;
  /** Subject alternative names: DNS names or IP addresses. */
  readonly hosts?: readonly string[];
}

export interface EnrollOptions {
  readonly id: string;
  readonly secret: string;
  readonly csrOptions?: CsrOptions;
  readonly profile?: 'tls';
  readonly attrReqs?: readonly AttributeRequest[];
}

export interface Enrollment extends CaIdentity {
  /** PEM of the issuing CA (the TLS CA for the `tls` profile). */
  readonly caChainPem: string;
  readonly serial: string;
}

export interface RegisterOptions {
  readonly id: string;
  readonly type?: IdentityType;
  readonly secret?: string;
  readonly maxEnrollments?: number;
  readonly affiliation?: string;
  readonly attrs?: readonly Attribute[];
}

export interface RevokeOptions {
  readonly id?: string;
  readonly serial?: string;
  readonly aki?: string;
  readonly reason?: string;
  readonly gencrl?: boolean;
}

export interface CaInfo {
  readonly caName: string;
  readonly caChainPem: string;
  readonly tlsCaChainPem: string;
  readonly version: string;
}

export interface CaClientOptions {
  /** `https://host:port` of the CA. */
  readonly url: string;
  /** The TLS CA root to trust for the CA's listener. */
  readonly tlsRootPem?: string;
  /** The token timestamp comes from this clock. */
  readonly clock?: () => Date;
  readonly timeoutMs?: number;
}

/** What `raw` sends: everything about a request a test or tool may want to choose itself. */
export interface RawRequest {
  readonly method: string;
  /** Path under /api/v1 with its query string, e.g. `/certificates?id=peer0`. */
  readonly path: string;
  readonly body?: unknown;
  /** Bytes sent as they are (instead of `body`). */
  readonly rawBody?: Uint8Array;
  /** Sign a token with this identity. */
  readonly identity?: CaIdentity;
  /** HTTP Basic credentials (enroll). */
  readonly basic?: { readonly id: string; readonly secret: string };
  readonly timestamp?: string;
  readonly nonce?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface RawResponse {
  readonly status: number;
  readonly body: CaResponse<unknown> | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /** The headers the request was sent with (to replay them). */
  readonly sentHeaders: Readonly<Record<string, string>>;
}

const fromB64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

function serialOf(certPem: string): string {
  const s = new x509.X509Certificate(certPem).serialNumber.toLowerCase().replace(/^0+/, '');
  return s === '' ? '0' : s;
}

/** A new P-256 key and a PKCS#10 request signed by it. */
export async function createCsr(options: CsrOptions & { cn: string }): Promise<{ csrPem: string; keyPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const name: x509.JsonName = [];
  for (const n of options.names ?? []) {
    for (const [k, v] of Object.entries(n)) if (['C', 'ST', 'L', 'O'].includes(k) && v) name.push({ [k]: [v] });
  }
  name.push({ CN: [options.cn] });
  const extensions: x509.Extension[] = [];
  if (options.hosts && options.hosts.length > 0) {
    extensions.push(
      new x509.SubjectAlternativeNameExtension(options.hosts.map((h) => ({ type: isIP(h) ? 'ip' : 'dns', value: h }))),
    );
  }
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name, keys, signingAlgorithm: ALG, extensions });
  const keyPem = x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  return { csrPem: csr.toString('pem'), keyPem };
}

export class CaClient {
  readonly #url: URL;
  readonly #tlsRootPem: string | undefined;
  readonly #clock: () => Date;
  readonly #timeoutMs: number;

  constructor(options: CaClientOptions) {
    this.#url = new URL(options.url);
    this.#tlsRootPem = options.tlsRootPem;
    this.#clock = options.clock ?? (() => new Date());
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Sends one request and returns whatever came back; never throws for an HTTP error status. */
  raw(req: RawRequest): Promise<RawResponse> {
    const path = `${API_PREFIX}${req.path}`;
    const body = req.rawBody
      ? Buffer.from(req.rawBody)
      : req.body === undefined
        ? Buffer.alloc(0)
        : Buffer.from(JSON.stringify(req.body), 'utf8');
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body.length > 0) headers['content-type'] = 'application/json';
    if (req.basic) {
      headers.authorization = `Basic ${Buffer.from(`${req.basic.id}:${req.basic.secret}`).toString('base64')}`;
    }
    if (req.identity) {
      Object.assign(
        headers,
        createToken({
          certPem: req.identity.certPem,
          privateKey: privateKeyFromPem(req.identity.keyPem),
          method: req.method,
          path,
          body,
          timestamp: req.timestamp ?? String(this.#clock().getTime()),
          nonce: req.nonce ?? randomBytes(16).toString('base64url'),
        }),
      );
    }
    Object.assign(headers, req.headers);
    return this.#send(req.method, path, headers, body);
  }

  #send(method: string, path: string, headers: Record<string, string>, body: Buffer): Promise<RawResponse> {
    const https = this.#url.protocol === 'https:';
    const send = https ? httpsRequest : httpRequest;
    return new Promise<RawResponse>((resolve, reject) => {
      const r = send(
        {
          protocol: this.#url.protocol,
          hostname: this.#url.hostname.replace(/^\[|\]$/g, ''),
          port: this.#url.port,
          method,
          path,
          headers: { ...headers, 'content-length': String(body.length) },
          ...(https && this.#tlsRootPem ? { ca: this.#tlsRootPem } : {}),
          timeout: this.#timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: CaResponse<unknown> | undefined;
            try {
              parsed = text ? (JSON.parse(text) as CaResponse<unknown>) : undefined;
            } catch {
              parsed = undefined;
            }
            const resHeaders: Record<string, string> = {};
            for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') resHeaders[k] = v;
            resolve({ status: res.statusCode ?? 0, body: parsed, headers: resHeaders, sentHeaders: headers });
          });
        },
      );
      r.on('timeout', () => r.destroy(new Error(`no answer from ${this.#url.origin} within ${this.#timeoutMs} ms`)));
      r.on('error', (e) =>
        reject(
          new LoomError(CaErrorCode.UNAVAILABLE, `CA ${this.#url.origin} unreachable: ${e.message}`, {
            httpStatus: 503,
            cause: e,
          }),
        ),
      );
      r.end(body);
    });
  }

  /** `raw`, then the result, or a LoomError carrying the CA's code and status. */
  async #call<T>(req: RawRequest): Promise<T> {
    const res = await this.raw(req);
    if (!res.body || typeof res.body !== 'object' || !('success' in res.body)) {
      throw new LoomError(CaErrorCode.UNAVAILABLE, `CA answered ${res.status} without a CA response body`, {
        httpStatus: 502,
        details: { status: res.status },
      });
    }
    if (!res.body.success) {
      const err = res.body.errors?.[0];
      throw new LoomError(err?.code ?? CaErrorCode.INTERNAL, err?.message ?? `CA answered ${res.status}`, {
        httpStatus: res.status,
        details: { status: res.status, errors: res.body.errors },
      });
    }
    return res.body.result as T;
  }

  async cainfo(): Promise<CaInfo> {
    const r = await this.#call<CaInfoResult>({ method: Routes.cainfo.method, path: Routes.cainfo.path });
    return {
      caName: r.CAName,
      caChainPem: fromB64(r.CAChain),
      tlsCaChainPem: fromB64(r.TLSCAChain),
      version: r.Version,
    };
  }

  async enroll(options: EnrollOptions): Promise<Enrollment> {
    const { csrPem, keyPem } = await createCsr({ ...options.csrOptions, cn: options.csrOptions?.cn ?? options.id });
    const r = await this.#call<EnrollResult>({
      method: Routes.enroll.method,
      path: Routes.enroll.path,
      basic: { id: options.id, secret: options.secret },
      body: {
        certificate_request: csrPem,
        ...(options.profile ? { profile: options.profile } : {}),
        ...(options.attrReqs ? { attr_reqs: options.attrReqs } : {}),
        ...(options.csrOptions?.hosts ? { hosts: options.csrOptions.hosts } : {}),
      },
    });
    const certPem = fromB64(r.Cert);
    return { certPem, keyPem, caChainPem: fromB64(r.ServerInfo.CAChain), serial: serialOf(certPem) };
  }

  /** A new key and certificate for `identity`, authenticated by its current certificate. */
  async reenroll(
    identity: CaIdentity,
    options: { csrOptions?: CsrOptions; profile?: 'tls'; attrReqs?: readonly AttributeRequest[] } = {},
  ): Promise<Enrollment> {
    const cn =
      options.csrOptions?.cn ?? new x509.X509Certificate(identity.certPem).subjectName.getField('CN')[0] ?? 'reenroll';
    const { csrPem, keyPem } = await createCsr({ ...options.csrOptions, cn });
    const r = await this.#call<EnrollResult>({
      method: Routes.reenroll.method,
      path: Routes.reenroll.path,
      identity,
      body: {
        certificate_request: csrPem,
        ...(options.profile ? { profile: options.profile } : {}),
        ...(options.attrReqs ? { attr_reqs: options.attrReqs } : {}),
        ...(options.csrOptions?.hosts ? { hosts: options.csrOptions.hosts } : {}),
      },
    });
    const certPem = fromB64(r.Cert);
    return { certPem, keyPem, caChainPem: fromB64(r.ServerInfo.CAChain), serial: serialOf(certPem) };
  }

  /** Registers an identity; resolves with its enrollment secret. */
  async register(registrar: CaIdentity, options: RegisterOptions): Promise<string> {
    const r = await this.#call<{ secret: string }>({
      method: Routes.register.method,
      path: Routes.register.path,
      identity: registrar,
      body: {
        id: options.id,
        type: options.type ?? 'client',
        ...(options.secret ? { secret: options.secret } : {}),
        ...(options.maxEnrollments !== undefined ? { max_enrollments: options.maxEnrollments } : {}),
        affiliation: options.affiliation ?? '',
        attrs: options.attrs ?? [],
      },
    });
    return r.secret;
  }

  async revoke(
    registrar: CaIdentity,
    options: RevokeOptions,
  ): Promise<{ revoked: ReadonlyArray<{ serial: string; aki: string }>; crlPem?: string }> {
    const r = await this.#call<RevokeResult>({
      method: Routes.revoke.method,
      path: Routes.revoke.path,
      identity: registrar,
      body: options,
    });
    return {
      revoked: r.RevokedCerts.map((c) => ({ serial: c.Serial, aki: c.AKI })),
      ...(r.CRL ? { crlPem: fromB64(r.CRL) } : {}),
    };
  }

  /** The root CA's CRL, PEM. */
  async gencrl(registrar: CaIdentity): Promise<string> {
    const r = await this.#call<{ CRL: string }>({
      method: Routes.gencrl.method,
      path: Routes.gencrl.path,
      identity: registrar,
      body: {},
    });
    return fromB64(r.CRL);
  }

  async certificates(
    caller: CaIdentity,
    filter: { id?: string; serial?: string; revoked?: boolean } = {},
  ): Promise<CertificateInfo[]> {
    const q = new URLSearchParams();
    if (filter.id) q.set('id', filter.id);
    if (filter.serial) q.set('serial', filter.serial);
    if (filter.revoked !== undefined) q.set('revoked', String(filter.revoked));
    const qs = q.toString();
    const r = await this.#call<{ certs: CertificateInfo[] }>({
      method: Routes.certificates.method,
      path: `${Routes.certificates.path}${qs ? `?${qs}` : ''}`,
      identity: caller,
    });
    return r.certs;
  }

  readonly identities = {
    list: async (caller: CaIdentity): Promise<IdentityInfo[]> =>
      (
        await this.#call<{ identities: IdentityInfo[] }>({
          method: Routes.listIdentities.method,
          path: Routes.listIdentities.path,
          identity: caller,
        })
      ).identities,
    get: (caller: CaIdentity, id: string): Promise<IdentityInfo> =>
      this.#call({
        method: Routes.getIdentity.method,
        path: routePath(Routes.getIdentity, { id }),
        identity: caller,
      }),
    add: async (caller: CaIdentity, options: RegisterOptions): Promise<string> => this.register(caller, options),
    modify: (caller: CaIdentity, id: string, changes: ModifyIdentityRequest): Promise<IdentityInfo> =>
      this.#call({
        method: Routes.modifyIdentity.method,
        path: routePath(Routes.modifyIdentity, { id }),
        identity: caller,
        body: changes,
      }),
    remove: (caller: CaIdentity, id: string, options: { force?: boolean } = {}): Promise<IdentityInfo> =>
      this.#call({
        method: Routes.removeIdentity.method,
        path: `${routePath(Routes.removeIdentity, { id })}${options.force ? '?force=true' : ''}`,
        identity: caller,
      }),
  };

  readonly affiliations = {
    list: (caller: CaIdentity): Promise<AffiliationInfo> =>
      this.#call({ method: Routes.listAffiliations.method, path: Routes.listAffiliations.path, identity: caller }),
    add: (caller: CaIdentity, name: string, options: { force?: boolean } = {}): Promise<{ name: string }> =>
      this.#call({
        method: Routes.addAffiliation.method,
        path: `${Routes.addAffiliation.path}${options.force ? '?force=true' : ''}`,
        identity: caller,
        body: { name },
      }),
    remove: (caller: CaIdentity, name: string, options: { force?: boolean } = {}): Promise<{ name: string }> =>
      this.#call({
        method: Routes.removeAffiliation.method,
        path: `${routePath(Routes.removeAffiliation, { name })}${options.force ? '?force=true' : ''}`,
        identity: caller,
      }),
  };
}
