/** Types shared by the chaincode runtime's parts. */
import type { ChaincodeResponse, TransactionPayload } from '@loom/common/chaincode-protocol';
import type { TxSimulator } from '../../simulation/tx-simulator.js';

export const ChaincodeRuntimeErrorCode = {
  /** The chaincode did not complete within the execute timeout; its process was killed. */
  TIMEOUT: 'CHAINCODE_TIMEOUT',
  /** The chaincode process exited, or its stream closed, while the transaction was running. */
  CRASHED: 'CHAINCODE_CRASHED',
  /** The chaincode could not be launched or reached, or did not register in time. */
  START_FAILED: 'CHAINCODE_START_FAILED',
  /** The package id is not installed on this peer (the resolver knows nothing of it). */
  NOT_INSTALLED: 'CHAINCODE_NOT_INSTALLED',
  /** The runtime is stopped. */
  STOPPED: 'CHAINCODE_RUNTIME_STOPPED',
} as const;

/** `connection.json` of chaincode-as-a-service (Fabric's external builder format). */
export interface ChaincodeServerConnection {
  /** `host:port` of the chaincode server. */
  readonly address: string;
  /** Go duration text (`10s`, `500ms`) or milliseconds; default 10 s. */
  readonly dial_timeout?: string | number | undefined;
  /** Dial the chaincode server over TLS, trusting `root_cert`. */
  readonly tls_required?: boolean | undefined;
  /** Present `client_cert`/`client_key` (the server requires client certificates). */
  readonly client_auth_required?: boolean | undefined;
  /** PEM of the root the chaincode server's certificate chains to. */
  readonly root_cert?: string | undefined;
  /** PEM of the peer's client certificate and key for this chaincode server. */
  readonly client_cert?: string | undefined;
  readonly client_key?: string | undefined;
}

/** How to run an installed package. */
export type ChaincodeLaunchSpec =
  | {
      readonly kind: 'process';
      /** The chaincode's directory (package.json with `main`, and its node_modules). */
      readonly dir: string;
      /**
       * The `loom-chaincode` entry script; default `<dir>/node_modules/.bin/loom-chaincode`, else
       * the runtime's `defaultChaincodeBin`.
       */
      readonly bin?: string | undefined;
      /** Extra environment for the process. */
      readonly env?: Readonly<Record<string, string>> | undefined;
    }
  | { readonly kind: 'external'; readonly connection: ChaincodeServerConnection };

/** Finds how to run a package id; undefined when it is not installed. */
export type ChaincodePackageResolver = (
  packageId: string,
) => ChaincodeLaunchSpec | undefined | Promise<ChaincodeLaunchSpec | undefined>;

/** A chaincode called from chaincode (`invokeChaincode`): `channel` undefined means the same channel. */
export type InvokeChaincodeHandler = (target: {
  readonly chaincodeName: string;
  readonly channel: string | undefined;
  readonly args: Uint8Array[];
}) => Promise<ChaincodeResponse>;

/** What a chaincode does with a collection: read values, read hashes only, or write (put/delete/purge). */
export type CollectionOperation = 'read' | 'hash' | 'write';

export interface ExecuteRequest {
  readonly packageId: string;
  /** The chaincode's name: the namespace its state lives in. */
  readonly chaincodeName: string;
  readonly channelId: string;
  readonly txId: string;
  /** INIT instead of TRANSACTION. */
  readonly isInit: boolean;
  readonly input: TransactionPayload;
  readonly simulator: TxSimulator;
  /** Collections the chaincode defines; undefined allows any (no definition at hand). */
  readonly collections?: ReadonlySet<string> | undefined;
  /**
   * Private data access control (privdata/): throws a LoomError when the collection does not exist
   * or the operation is not allowed (memberOnlyRead/memberOnlyWrite, or a read on a peer of a
   * non-member org). When given, it replaces the `collections` name check.
   */
  readonly collectionAccess?: ((collection: string, op: CollectionOperation) => void) | undefined;
  readonly invokeChaincode?: InvokeChaincodeHandler | undefined;
  /** Overrides the runtime's execute timeout. */
  readonly timeoutMs?: number | undefined;
}

export interface ExecuteResult {
  /** The chaincode's response; an ERROR from the chaincode becomes status 500 with its message. */
  readonly response: ChaincodeResponse;
  readonly event: { readonly eventName: string; readonly payload: Uint8Array } | null;
}
