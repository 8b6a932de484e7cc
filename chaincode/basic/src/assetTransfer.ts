/*
 * Asset transfer (basic): Fabric's asset-transfer-basic functions, plus history and an owner query.
 * Written against the fabric-contract-api surface; on Loom the only difference is the import.
 */
import { type Context, Contract, Info, Returns, Transaction } from '@loom/chaincode-sdk';
import type { Asset } from './asset.js';
import { stringifySorted } from './deterministic-json.js';

@Info({ title: 'AssetTransfer', description: 'Smart contract for trading assets' })
export class AssetTransferContract extends Contract {
  @Transaction()
  public async InitLedger(ctx: Context): Promise<void> {
    const assets: Asset[] = [
      { docType: 'asset', ID: 'asset1', Color: 'blue', Size: 5, Owner: 'Tomoko', AppraisedValue: 300 },
      { docType: 'asset', ID: 'asset2', Color: 'red', Size: 5, Owner: 'Brad', AppraisedValue: 400 },
      { docType: 'asset', ID: 'asset3', Color: 'green', Size: 10, Owner: 'Jin Soo', AppraisedValue: 500 },
      { docType: 'asset', ID: 'asset4', Color: 'yellow', Size: 10, Owner: 'Max', AppraisedValue: 600 },
      { docType: 'asset', ID: 'asset5', Color: 'black', Size: 15, Owner: 'Adriana', AppraisedValue: 700 },
      { docType: 'asset', ID: 'asset6', Color: 'white', Size: 15, Owner: 'Michel', AppraisedValue: 800 },
    ];
    for (const asset of assets) {
      await ctx.stub.putState(asset.ID, Buffer.from(stringifySorted(asset)));
      console.info(`Asset ${asset.ID} initialized`);
    }
  }

  // CreateAsset issues a new asset to the world state with given details.
  @Transaction()
  public async CreateAsset(
    ctx: Context,
    id: string,
    color: string,
    size: number,
    owner: string,
    appraisedValue: number,
  ): Promise<void> {
    if (await this.AssetExists(ctx, id)) {
      throw new Error(`The asset ${id} already exists`);
    }
    const asset: Asset = {
      docType: 'asset',
      ID: id,
      Color: color,
      Size: size,
      Owner: owner,
      AppraisedValue: appraisedValue,
    };
    await ctx.stub.putState(id, Buffer.from(stringifySorted(asset)));
  }

  // ReadAsset returns the asset stored in the world state with given id.
  @Transaction(false)
  @Returns('string')
  public async ReadAsset(ctx: Context, id: string): Promise<string> {
    const assetJSON = await ctx.stub.getState(id);
    if (!assetJSON || assetJSON.length === 0) {
      throw new Error(`The asset ${id} does not exist`);
    }
    return assetJSON.toString();
  }

  // UpdateAsset updates an existing asset in the world state with provided parameters.
  @Transaction()
  public async UpdateAsset(
    ctx: Context,
    id: string,
    color: string,
    size: number,
    owner: string,
    appraisedValue: number,
  ): Promise<void> {
    if (!(await this.AssetExists(ctx, id))) {
      throw new Error(`The asset ${id} does not exist`);
    }
    const updated: Asset = {
      docType: 'asset',
      ID: id,
      Color: color,
      Size: size,
      Owner: owner,
      AppraisedValue: appraisedValue,
    };
    await ctx.stub.putState(id, Buffer.from(stringifySorted(updated)));
  }

  // DeleteAsset deletes a given asset from the world state.
  @Transaction()
  public async DeleteAsset(ctx: Context, id: string): Promise<void> {
    if (!(await this.AssetExists(ctx, id))) {
      throw new Error(`The asset ${id} does not exist`);
    }
    await ctx.stub.deleteState(id);
  }

  // AssetExists returns true when an asset with the given ID exists in world state.
  @Transaction(false)
  @Returns('boolean')
  public async AssetExists(ctx: Context, id: string): Promise<boolean> {
    const assetJSON = await ctx.stub.getState(id);
    return assetJSON.length > 0;
  }

  // TransferAsset updates the owner field of an asset, emits a TransferAsset event and returns the old owner.
  @Transaction()
  @Returns('string')
  public async TransferAsset(ctx: Context, id: string, newOwner: string): Promise<string> {
    const assetString = await this.ReadAsset(ctx, id);
    const asset = JSON.parse(assetString) as Asset;
    const oldOwner = asset.Owner;
    asset.Owner = newOwner;
    const assetJSON = stringifySorted(asset);
    await ctx.stub.putState(id, Buffer.from(assetJSON));
    ctx.stub.setEvent('TransferAsset', Buffer.from(assetJSON));
    return oldOwner;
  }

  // GetAllAssets returns all assets found in the world state.
  @Transaction(false)
  @Returns('string')
  public async GetAllAssets(ctx: Context): Promise<string> {
    const allResults: unknown[] = [];
    const iterator = await ctx.stub.getStateByRange('', '');
    let result = await iterator.next();
    while (!result.done) {
      const strValue = Buffer.from(result.value.value.toString()).toString('utf8');
      let record: unknown;
      try {
        record = JSON.parse(strValue);
      } catch (err) {
        console.log(err);
        record = strValue;
      }
      allResults.push(record);
      result = await iterator.next();
    }
    await iterator.close();
    return JSON.stringify(allResults);
  }

  // GetAssetHistory returns every committed change of an asset, oldest first.
  @Transaction(false)
  @Returns('string')
  public async GetAssetHistory(ctx: Context, id: string): Promise<string> {
    const history: unknown[] = [];
    for await (const mod of ctx.stub.getHistoryForKey(id)) {
      const text = mod.value.toString('utf8');
      let asset: unknown = null;
      if (!mod.isDelete && text !== '') {
        try {
          asset = JSON.parse(text);
        } catch {
          asset = text;
        }
      }
      history.push({
        txId: mod.txId,
        timestamp: { seconds: mod.timestamp.seconds, nanos: mod.timestamp.nanos },
        isDelete: mod.isDelete,
        asset,
      });
    }
    return JSON.stringify(history);
  }

  // QueryAssetsByOwner runs a rich query (served by the indexOwner index) for one owner's assets.
  @Transaction(false)
  @Returns('string')
  public async QueryAssetsByOwner(ctx: Context, owner: string): Promise<string> {
    const query = { selector: { docType: 'asset', Owner: owner } };
    const results: unknown[] = [];
    for await (const kv of ctx.stub.getQueryResult(JSON.stringify(query))) {
      results.push(JSON.parse(kv.value.toString('utf8')));
    }
    return JSON.stringify(results);
  }
}
