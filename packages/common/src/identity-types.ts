/**
 * The shape of a verified identity as policies see it. The MSP produces objects that satisfy this;
 * policy evaluation depends only on this interface, never on certificates.
 */
export type NodeRole = 'client' | 'peer' | 'orderer' | 'admin';

export interface SignerIdentity {
  /** The MSP (organization) that validated this identity. */
  readonly mspId: string;
  /** The NodeOU role from the certificate, if the MSP uses NodeOUs and one was present. */
  readonly role: NodeRole | undefined;
  /** True when the identity is an admin: admin NodeOU, or listed among the MSP's admin certificates. */
  readonly isAdmin: boolean;
  /** Stable identifier: lowercase hex SHA-256 of the certificate's DER bytes. */
  readonly id: string;
}
