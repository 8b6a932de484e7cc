/**
 * ClientIdentity as in fabric-shim: who submitted the transaction, read from the creator's X.509
 * certificate — id, MSP, and the attributes a Fabric-style CA embeds in extension 1.2.3.4.5.6.7.8.1
 * as JSON `{"attrs": {name: value}}` (for attribute-based access control).
 */
import { X509Certificate } from 'node:crypto';
import { DerTag, decodeOid, derChildren, derContent, readDerWhole } from '@loom/common/crypto/asn1';

/** The OID Fabric CA uses for its attribute extension. */
export const ATTRIBUTE_EXTENSION_OID = '1.2.3.4.5.6.7.8.1';

interface CreatorSource {
  getCreator(): { mspid: string; idBytes: Uint8Array };
}

export class ClientIdentity {
  readonly mspId: string;
  readonly cert: X509Certificate;
  readonly attrs: Record<string, string>;
  readonly #idBytes: Uint8Array;
  readonly #id: string;

  constructor(stub: CreatorSource) {
    const creator = stub.getCreator();
    this.mspId = creator.mspid;
    this.#idBytes = creator.idBytes;
    try {
      this.cert = new X509Certificate(Buffer.from(creator.idBytes));
    } catch (e) {
      throw new Error(`failed to parse the creator's certificate: ${(e as Error).message}`);
    }
    this.#id = `x509::${formatDn(this.cert.subject)}::${formatDn(this.cert.issuer)}`;
    this.attrs = readAttributes(new Uint8Array(this.cert.raw));
  }

  /** `x509::<subject DN>::<issuer DN>`, each DN as `/C=US/O=Org1/CN=user1`. */
  getID(): string {
    return this.#id;
  }

  getMSPID(): string {
    return this.mspId;
  }

  /** The attribute's value, or null when the certificate does not carry it. */
  getAttributeValue(attrName: string): string | null {
    return Object.hasOwn(this.attrs, attrName) ? (this.attrs[attrName] ?? null) : null;
  }

  /** True when the attribute is present with exactly this value. */
  assertAttributeValue(attrName: string, attrValue: string): boolean {
    return this.getAttributeValue(attrName) === attrValue;
  }

  getIDBytes(): Uint8Array {
    return this.#idBytes;
  }

  getX509Certificate(): X509Certificate {
    return this.cert;
  }
}

/** node prints DNs one RDN per line in certificate order; Fabric's node shim writes `/A=b/C=d`. */
function formatDn(dn: string): string {
  return dn
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => `/${l}`)
    .join('');
}

/**
 * Walks Certificate → TBSCertificate → [3] extensions for the attribute extension; its extnValue
 * holds the JSON directly. A certificate without it has no attributes.
 */
export function readAttributes(der: Uint8Array): Record<string, string> {
  const value = findExtension(der, ATTRIBUTE_EXTENSION_OID);
  if (value === null) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value).toString('utf8'));
  } catch {
    throw new Error('the certificate attribute extension is not valid JSON');
  }
  const attrs = (parsed as { attrs?: unknown } | null)?.attrs;
  if (attrs === null || typeof attrs !== 'object') return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs as Record<string, unknown>)) out[k] = typeof v === 'string' ? v : String(v);
  return out;
}

export function findExtension(der: Uint8Array, oid: string): Uint8Array | null {
  const cert = readDerWhole(der, DerTag.SEQUENCE);
  const tbs = derChildren(der, cert)[0];
  if (tbs === undefined || tbs.tag !== DerTag.SEQUENCE) throw new Error('malformed certificate');
  const extsWrapper = derChildren(der, tbs).find((el) => el.tag === 0xa3);
  if (extsWrapper === undefined) return null;
  const exts = derChildren(der, extsWrapper)[0];
  if (exts === undefined) return null;
  for (const ext of derChildren(der, exts)) {
    const parts = derChildren(der, ext);
    const id = parts[0];
    if (id === undefined || id.tag !== DerTag.OID || decodeOid(derContent(der, id)) !== oid) continue;
    const value = parts[parts.length - 1];
    if (value === undefined || value.tag !== DerTag.OCTET_STRING) throw new Error('malformed certificate extension');
    return derContent(der, value);
  }
  return null;
}
