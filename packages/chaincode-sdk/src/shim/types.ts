import type {
  ChaincodePayloads,
  ChaincodeRequestType,
  ChaincodeResponse as WireResponse,
  ResponsePayload,
} from '@loom/common/chaincode-protocol';
import type { ChaincodeStub } from './stub.js';

/** What `Init`/`Invoke` return: Fabric's peer.Response. */
export interface ChaincodeResponse {
  status: number;
  message: string;
  payload: Uint8Array;
}

/** A low-level chaincode, as passed to `Shim.start`. */
export interface ChaincodeInterface {
  Init(stub: ChaincodeStub): Promise<ChaincodeResponse> | ChaincodeResponse;
  Invoke(stub: ChaincodeStub): Promise<ChaincodeResponse> | ChaincodeResponse;
}

/** How a stub reaches the peer: one request, one reply, in the transaction's context. */
export interface PeerRequester {
  request<T extends ChaincodeRequestType>(
    channelId: string,
    txId: string,
    type: T,
    payload: ChaincodePayloads[T],
  ): Promise<ResponsePayload>;
}

export type { WireResponse };
