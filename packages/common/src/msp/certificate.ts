/**
 * Certificate and CRL parsing for the MSP: a strict DER walk over the fields the MSP needs (serial,
 * issuer and subject names, validity, subject key, basicConstraints, the Fabric CA attribute
 * extension), with signatures checked by node:crypto (OpenSSL). A general X.509 library costs about a
 * millisecond per certificate here; this costs tens of microseconds, which matters when a block
 * brings many identities the cache has not seen. Test material is generated with @peculiar/x509
 * (src/testing), and the tests check this parser against it.
 */
import { createPublicKey, type KeyObject, verify as nodeVerify } from 'node:crypto';
import {
  type DerElement,
  DerError,
  DerTag,
  decodeOid,
  decodePemBlocks,
  derChildren,
  derContent,
  derEncoded,
  encodePem,
  expectTag,
  readDerWhole,
} from '../crypto/asn1.js';
import { sha256Hex } from '../crypto/hash.js';
import { LoomError } from '../errors.js';
import { type CertificateSubject, MspErrorCode } from './types.js';

export const FABRIC_ATTRS_OID = '1.2.3.4.5.6.7.8.1';
const BASIC_CONSTRAINTS_OID = '2.5.29.19';

export interface ParsedCertificate {
  readonly pem: string;
  readonly der: Uint8Array;
  /** Lowercase hex SHA-256 of the DER. */
  readonly id: string;
  readonly publicKey: KeyObject;
  readonly serialNumber: string;
  readonly issuerDer: Uint8Array;
  readonly subjectDer: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCa: boolean;
  readonly subject: CertificateSubject;
  readonly attributes: Readonly<Record<string, string>>;
  /** The signed part and its signature, for checking this certificate under an issuer's key. */
  readonly tbs: Uint8Array;
  readonly signatureHash: string;
  readonly signature: Uint8Array;
}

export function certMalformed(reason: string, cause?: unknown): LoomError {
  return new LoomError(MspErrorCode.CERT_MALFORMED, `malformed certificate: ${reason}`, {
    httpStatus: 400,
    details: { reason },
    cause,
  });
}

/** Lowercase hex of an INTEGER's content with leading zero bytes removed: one spelling per serial. */
export function normalizeSerial(content: Uint8Array | string): string {
  const hex = typeof content === 'string' ? content.toLowerCase() : Buffer.from(content).toString('hex');
  const trimmed = hex.replace(/^0+/, '');
  return trimmed === '' ? '0' : trimmed;
}

/** Exactly one CERTIFICATE block, or DER bytes. */
export function certificateDer(input: string | Uint8Array): Uint8Array {
  if (typeof input !== 'string') return input;
  let blocks: ReturnType<typeof decodePemBlocks>;
  try {
    blocks = decodePemBlocks(input);
  } catch (e) {
    throw certMalformed((e as Error).message, e);
  }
  if (blocks.length !== 1 || blocks[0]!.label !== 'CERTIFICATE') {
    throw certMalformed('expected exactly one PEM CERTIFICATE block');
  }
  return blocks[0]!.der;
}

const SIG_HASH_BY_OID: Record<string, string> = {
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
};

function signatureHashOf(buf: Uint8Array, alg: DerElement | undefined, what: string): string {
  const parts = derChildren(buf, expectTag(alg, DerTag.SEQUENCE, what));
  const oid = decodeOid(derContent(buf, expectTag(parts[0], DerTag.OID, what)));
  const hash = SIG_HASH_BY_OID[oid];
  if (!hash) throw new DerError(`unsupported signature algorithm ${oid}`);
  return hash;
}

function bitStringBytes(buf: Uint8Array, el: DerElement | undefined, what: string): Uint8Array {
  const bits = derContent(buf, expectTag(el, DerTag.BIT_STRING, what));
  if (bits[0] !== 0) throw new DerError(`${what}: unused bits`);
  return bits.subarray(1);
}

// ---- names ----

const NAME_BY_OID: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.4': 'SN',
  '2.5.4.5': 'serialNumber',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.9': 'STREET',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.12': 'T',
  '2.5.4.17': 'postalCode',
  '2.5.4.42': 'G',
  '0.9.2342.19200300.100.1.1': 'UID',
  '0.9.2342.19200300.100.1.25': 'DC',
  '1.2.840.113549.1.9.1': 'E',
};

const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

function directoryString(buf: Uint8Array, el: DerElement): string {
  const content = derContent(buf, el);
  switch (el.tag) {
    case 0x0c: // UTF8String
      return utf8.decode(content);
    case 0x13: // PrintableString
    case 0x16: // IA5String
    case 0x14: // TeletexString: Latin-1 in practice
      return latin1.decode(content);
    case 0x1e: {
      // BMPString: UTF-16BE
      if (content.length % 2) throw new DerError('odd-length BMPString');
      let s = '';
      for (let i = 0; i < content.length; i += 2) s += String.fromCharCode((content[i]! << 8) | content[i + 1]!);
      return s;
    }
    default:
      throw new DerError(`unsupported string type 0x${el.tag.toString(16)} in name`);
  }
}

function escapeDnValue(v: string): string {
  return v
    .replace(/([,+"\\<>;=])/g, '\\$1')
    .replace(/^([ #])/, '\\$1')
    .replace(/ $/, '\\ ');
}

interface ParsedName {
  readonly fields: Map<string, string[]>;
  readonly text: string;
}

function parseName(buf: Uint8Array, nameEl: DerElement): ParsedName {
  const fields = new Map<string, string[]>();
  const rdns: string[] = [];
  for (const rdn of derChildren(buf, nameEl)) {
    const parts: string[] = [];
    for (const atv of derChildren(buf, expectTag(rdn, DerTag.SET, 'RelativeDistinguishedName'))) {
      const [typeEl, valueEl, extra] = derChildren(buf, expectTag(atv, DerTag.SEQUENCE, 'AttributeTypeAndValue'));
      if (!valueEl || extra) throw new DerError('AttributeTypeAndValue must have two fields');
      const oid = decodeOid(derContent(buf, expectTag(typeEl, DerTag.OID, 'attribute type')));
      const short = NAME_BY_OID[oid];
      if (short) {
        const value = directoryString(buf, valueEl);
        const list = fields.get(short);
        if (list) list.push(value);
        else fields.set(short, [value]);
        parts.push(`${short}=${escapeDnValue(value)}`);
      } else {
        parts.push(`${oid}=#${Buffer.from(derEncoded(buf, valueEl)).toString('hex')}`);
      }
    }
    rdns.push(parts.join('+'));
  }
  return { fields, text: rdns.join(', ') };
}

// ---- validity ----

function parseTime(buf: Uint8Array, el: DerElement | undefined, what: string): Date {
  if (!el) throw new DerError(`${what}: missing`);
  const s = latin1.decode(derContent(buf, el));
  let m: RegExpMatchArray | null;
  let year: number;
  if (el.tag === 0x17) {
    m = s.match(/^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/);
    if (!m) throw new DerError(`${what}: malformed UTCTime`);
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy; // RFC 5280 §4.1.2.5.1
  } else if (el.tag === 0x18) {
    m = s.match(/^(\d\d\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/);
    if (!m) throw new DerError(`${what}: malformed GeneralizedTime`);
    year = Number(m[1]);
  } else {
    throw new DerError(`${what}: expected UTCTime or GeneralizedTime`);
  }
  const [mo, d, h, mi, se] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  const t = Date.UTC(year, mo - 1, d, h, mi, se);
  const date = new Date(t);
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) {
    throw new DerError(`${what}: invalid date`);
  }
  return date;
}

// ---- extensions ----

function readExtensions(buf: Uint8Array, el: DerElement | undefined): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  if (!el) return out;
  const [list, extra] = derChildren(buf, el);
  if (extra) throw new DerError('extensions: trailing data');
  for (const ext of derChildren(buf, expectTag(list, DerTag.SEQUENCE, 'extensions'))) {
    const parts = derChildren(buf, expectTag(ext, DerTag.SEQUENCE, 'extension'));
    const oid = decodeOid(derContent(buf, expectTag(parts[0], DerTag.OID, 'extnID')));
    let i = 1;
    if (parts[i]?.tag === 0x01) i++; // critical BOOLEAN
    const value = derContent(buf, expectTag(parts[i], DerTag.OCTET_STRING, 'extnValue'));
    if (parts.length !== i + 1) throw new DerError('extension: trailing data');
    if (out.has(oid)) throw new DerError(`duplicate extension ${oid}`); // RFC 5280 §4.2
    out.set(oid, value);
  }
  return out;
}

function readIsCa(ext: Uint8Array | undefined): boolean {
  if (!ext) return false;
  const seq = readDerWhole(ext, DerTag.SEQUENCE);
  const first = derChildren(ext, seq)[0];
  if (first?.tag !== 0x01) return false; // cA defaults to FALSE
  const v = derContent(ext, first);
  if (v.length !== 1) throw new DerError('malformed BOOLEAN');
  return v[0] !== 0;
}

function readAttributes(ext: Uint8Array | undefined): Record<string, string> {
  if (!ext) return {};
  let parsed: unknown;
  try {
    // Fabric CA puts the JSON bytes directly in extnValue.
    parsed = JSON.parse(utf8.decode(ext));
  } catch (e) {
    throw certMalformed('attribute extension is not JSON', e);
  }
  const attrs = (parsed as { attrs?: unknown } | null)?.attrs;
  if (attrs === undefined || attrs === null) return {};
  if (typeof attrs !== 'object' || Array.isArray(attrs)) {
    throw certMalformed('attribute extension: attrs is not an object');
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v !== 'string') throw certMalformed(`attribute ${k} is not a string`);
    out[k] = v;
  }
  return out;
}

export function parseCertificate(input: string | Uint8Array): ParsedCertificate {
  const der = certificateDer(input);
  try {
    const cert = readDerWhole(der, DerTag.SEQUENCE);
    const [tbsEl, algEl, sigEl, extra] = derChildren(der, cert);
    if (extra) throw new DerError('Certificate: trailing data');
    const signatureHash = signatureHashOf(der, algEl, 'signatureAlgorithm');
    const signature = bitStringBytes(der, sigEl, 'signatureValue');

    const tbs = derChildren(der, expectTag(tbsEl, DerTag.SEQUENCE, 'tbsCertificate'));
    let i = 0;
    if (tbs[0]?.tag === 0xa0) {
      const version = derContent(der, expectTag(derChildren(der, tbs[0])[0], DerTag.INTEGER, 'version'));
      if (version.length !== 1 || version[0] !== 2) throw new DerError('only X.509 v3 certificates are supported');
      i = 1;
    } else {
      throw new DerError('only X.509 v3 certificates are supported');
    }
    const serialContent = derContent(der, expectTag(tbs[i++], DerTag.INTEGER, 'serialNumber'));
    if (signatureHashOf(der, tbs[i++], 'signature') !== signatureHash) {
      throw new DerError('signature algorithm differs between tbsCertificate and Certificate');
    }
    const issuerEl = expectTag(tbs[i++], DerTag.SEQUENCE, 'issuer');
    const validity = derChildren(der, expectTag(tbs[i++], DerTag.SEQUENCE, 'validity'));
    if (validity.length !== 2) throw new DerError('validity must have two times');
    const subjectEl = expectTag(tbs[i++], DerTag.SEQUENCE, 'subject');
    const spkiEl = expectTag(tbs[i++], DerTag.SEQUENCE, 'subjectPublicKeyInfo');
    let extEl: DerElement | undefined;
    for (; i < tbs.length; i++) {
      const el = tbs[i]!;
      if (el.tag === 0xa3) extEl = el;
      else if (el.tag !== 0x81 && el.tag !== 0x82) throw new DerError('unexpected field in tbsCertificate');
    }
    const extensions = readExtensions(der, extEl);
    const subject = parseName(der, subjectEl);
    const spki = derEncoded(der, spkiEl);
    const publicKey = createPublicKey({
      key: Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength),
      format: 'der',
      type: 'spki',
    });

    return {
      pem: typeof input === 'string' ? input : encodePem('CERTIFICATE', der),
      der,
      id: sha256Hex(der),
      publicKey,
      serialNumber: normalizeSerial(serialContent),
      issuerDer: derEncoded(der, issuerEl),
      subjectDer: derEncoded(der, subjectEl),
      notBefore: parseTime(der, validity[0], 'notBefore'),
      notAfter: parseTime(der, validity[1], 'notAfter'),
      isCa: readIsCa(extensions.get(BASIC_CONSTRAINTS_OID)),
      subject: {
        commonName: subject.fields.get('CN')?.[0],
        organizationalUnits: subject.fields.get('OU') ?? [],
        organizations: subject.fields.get('O') ?? [],
        distinguishedName: subject.text,
      },
      attributes: readAttributes(extensions.get(FABRIC_ATTRS_OID)),
      tbs: derEncoded(der, tbsEl!),
      signatureHash,
      signature,
    };
  } catch (e) {
    if (e instanceof LoomError) throw e;
    throw certMalformed((e as Error).message, e);
  }
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True when `issuer` issued `cert`: names match and the signature verifies under the issuer's key. */
export function isIssuedBy(cert: ParsedCertificate, issuer: ParsedCertificate): boolean {
  if (!bytesEqual(cert.issuerDer, issuer.subjectDer)) return false;
  try {
    return nodeVerify(cert.signatureHash, cert.tbs, issuer.publicKey, cert.signature);
  } catch {
    return false;
  }
}

// ---- CRLs ----

export interface ParsedCrl {
  readonly issuerDer: Uint8Array;
  readonly revokedSerials: ReadonlySet<string>;
  /** Checks the CRL's signature under a candidate issuer key. */
  verifiedBy(key: KeyObject): boolean;
}

/** OpenSSL and Fabric CA write `X509 CRL`; some libraries write `CRL`. */
export const CRL_PEM_LABELS: readonly string[] = ['X509 CRL', 'CRL'];

export function parseCrl(pem: string): ParsedCrl {
  try {
    const blocks = decodePemBlocks(pem);
    if (blocks.length !== 1 || !CRL_PEM_LABELS.includes(blocks[0]!.label)) {
      throw new DerError('expected exactly one PEM X509 CRL block');
    }
    const der = blocks[0]!.der;
    const list = readDerWhole(der, DerTag.SEQUENCE);
    const [tbsEl, algEl, sigEl] = derChildren(der, list);
    const tbsBytes = derEncoded(der, expectTag(tbsEl, DerTag.SEQUENCE, 'tbsCertList'));
    const hash = signatureHashOf(der, algEl, 'signatureAlgorithm');
    const signature = bitStringBytes(der, sigEl, 'signatureValue');

    const tbs = derChildren(der, tbsEl!);
    let i = tbs[0]?.tag === DerTag.INTEGER ? 1 : 0;
    expectTag(tbs[i++], DerTag.SEQUENCE, 'signature');
    const issuerDer = derEncoded(der, expectTag(tbs[i++], DerTag.SEQUENCE, 'issuer'));
    i++; // thisUpdate
    const revoked = new Set<string>();
    for (; i < tbs.length; i++) {
      const el = tbs[i]!;
      // nextUpdate is a UTCTime/GeneralizedTime, extensions are [0]; only the SEQUENCE lists revocations.
      if (el.tag !== DerTag.SEQUENCE) continue;
      for (const entry of derChildren(der, el)) {
        const [serialEl] = derChildren(der, expectTag(entry, DerTag.SEQUENCE, 'revokedCertificate'));
        revoked.add(normalizeSerial(derContent(der, expectTag(serialEl, DerTag.INTEGER, 'userCertificate'))));
      }
    }
    return {
      issuerDer,
      revokedSerials: revoked,
      verifiedBy(key: KeyObject): boolean {
        try {
          return nodeVerify(hash, tbsBytes, key, signature);
        } catch {
          return false;
        }
      },
    };
  } catch (e) {
    throw new LoomError(MspErrorCode.CONFIG_INVALID, `malformed CRL: ${(e as Error).message}`, {
      httpStatus: 400,
      cause: e,
    });
  }
}
