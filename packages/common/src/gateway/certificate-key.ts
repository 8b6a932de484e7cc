/**
 * The public key of an X.509 certificate without an X.509 library: walks the DER to the
 * SubjectPublicKeyInfo and hands it to the portable key reader. Used where a signer's certificate
 * is already trusted by other means (the client verifying a peer's digest signature, a gateway
 * checking that an envelope is signed by its creator) and only the key is wanted. Portable.
 */
import { LoomError } from '../errors.js';
import { DerError, DerTag, decodePemBlocks, derChildren, derEncoded, expectTag, readDerWhole } from '../crypto/asn1.js';
import { toPublicPoint } from '../crypto/portable.js';

/** The certificate's public key as a 65-byte uncompressed P-256 point. */
export function publicKeyFromCertificate(cert: string | Uint8Array): Uint8Array {
  try {
    let der: Uint8Array;
    if (typeof cert === 'string' || cert[0] !== DerTag.SEQUENCE) {
      const text = typeof cert === 'string' ? cert : new TextDecoder().decode(cert);
      const block = decodePemBlocks(text).find((b) => b.label === 'CERTIFICATE');
      if (!block) throw new DerError('no CERTIFICATE block');
      der = block.der;
    } else {
      der = cert;
    }
    const certificate = readDerWhole(der, DerTag.SEQUENCE);
    const tbs = expectTag(derChildren(der, certificate)[0], DerTag.SEQUENCE, 'tbsCertificate');
    const fields = derChildren(der, tbs);
    // An explicit [0] version comes first in v3 certificates; SPKI is then the 7th field.
    const spkiIndex = fields[0]?.tag === 0xa0 ? 6 : 5;
    const spki = expectTag(fields[spkiIndex], DerTag.SEQUENCE, 'subjectPublicKeyInfo');
    return toPublicPoint(derEncoded(der, spki));
  } catch (e) {
    if (e instanceof LoomError) throw e;
    throw new LoomError('CERTIFICATE_MALFORMED', `certificate unreadable: ${(e as Error).message}`, {
      httpStatus: 400,
      cause: e,
    });
  }
}
