/** The client's identity as the network knows it. */
export interface Identity {
  /** The MSP (organization) that issued the identity. */
  readonly mspId: string;
  /** The X.509 certificate, PEM, as bytes (UTF-8). */
  readonly credentials: Uint8Array;
}
