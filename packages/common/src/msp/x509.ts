/**
 * The one place @peculiar/x509 is loaded. It resolves its services through tsyringe, which needs the
 * Reflect metadata API installed before the library's module body runs, hence the import order here.
 * Its WebCrypto provider is Node's. Import `x509` from here (`@loom/common/msp/x509`) wherever
 * certificates, CSRs or CRLs are generated (the CA, test fixtures); the MSP's validation path does not
 * load this library at all (see certificate.ts).
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
