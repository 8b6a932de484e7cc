/** This machine's node:crypto ECDSA P-256 (SHA-256) sign and verify rates, one core, measured now. */
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';

export interface CryptoRates {
  readonly signPerSec: number;
  readonly verifyPerSec: number;
}

/** Runs each operation for about `ms` milliseconds on a 1 KiB message (a typical signed payload). */
export function measureCryptoRates(ms = 1000): CryptoRates {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const message = randomBytes(1024);
  const signature = sign('sha256', message, privateKey);
  const rate = (op: () => unknown) => {
    for (let i = 0; i < 50; i++) op(); // warm up
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < ms) {
      for (let i = 0; i < 20; i++) op();
      n += 20;
      t = performance.now();
    }
    return (n / (t - t0)) * 1000;
  };
  return {
    signPerSec: rate(() => sign('sha256', message, privateKey)),
    verifyPerSec: rate(() => verify('sha256', message, publicKey, signature)),
  };
}
