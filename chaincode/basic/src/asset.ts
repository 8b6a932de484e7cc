// biome-ignore lint/suspicious/noShadowRestrictedNames: fabric-contract-api names this decorator Object; the code stays Fabric's.
import { Object, Property } from '@loom/chaincode-sdk';

@Object()
export class Asset {
  @Property()
  public docType?: string;

  @Property()
  public ID: string = '';

  @Property()
  public Color: string = '';

  @Property()
  public Size: number = 0;

  @Property()
  public Owner: string = '';

  @Property()
  public AppraisedValue: number = 0;
}
