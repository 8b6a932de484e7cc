/*
 * Private data sample: an asset whose public part (ID, color, size, owner org) is in world state
 * and whose private details (appraised value) live in a collection of Org1 and Org2
 * (collections_config.json). Private inputs come through the transient map only: proposal
 * arguments and chaincode responses of submitted transactions end up in blocks, which every
 * channel member stores. Non-members see the details' hash only (GetAssetDetailsHash).
 */
import { type Context, Contract, Info, Returns, Transaction } from '@loom/chaincode-sdk';
import { stringifySorted } from './deterministic-json.js';

export const DEFAULT_COLLECTION = 'assetCollection';

interface AssetProperties {
  ID: string;
  Color: string;
  Size: number;
  AppraisedValue: number;
}

function transientAsset(ctx: Context): AssetProperties {
  const raw = ctx.stub.getTransient().get('asset_properties');
  if (!raw || raw.length === 0) throw new Error('asset_properties must be given in the transient map');
  let p: Partial<AssetProperties>;
  try {
    p = JSON.parse(raw.toString()) as Partial<AssetProperties>;
  } catch {
    throw new Error('asset_properties is not JSON');
  }
  if (typeof p.ID !== 'string' || p.ID === '') throw new Error('asset_properties.ID must be a non-empty string');
  if (typeof p.AppraisedValue !== 'number') throw new Error('asset_properties.AppraisedValue must be a number');
  return { ID: p.ID, Color: String(p.Color ?? ''), Size: Number(p.Size ?? 0), AppraisedValue: p.AppraisedValue };
}

@Info({ title: 'PrivateAsset', description: 'Assets with private details in a collection' })
export class PrivateAssetContract extends Contract {
  /** Creates the asset: public part in state, AppraisedValue in `collection` (default assetCollection). */
  @Transaction()
  public async CreateAsset(ctx: Context, collection: string): Promise<void> {
    const p = transientAsset(ctx);
    const coll = collection || DEFAULT_COLLECTION;
    const owner = ctx.clientIdentity.getMSPID();
    await ctx.stub.putState(
      p.ID,
      Buffer.from(stringifySorted({ ID: p.ID, Color: p.Color, Size: p.Size, Owner: owner })),
    );
    await ctx.stub.putPrivateData(
      coll,
      p.ID,
      Buffer.from(stringifySorted({ ID: p.ID, AppraisedValue: p.AppraisedValue })),
    );
  }

  /** Replaces the private details (keeps the old value in the private history until purged/expired). */
  @Transaction()
  public async UpdateAssetDetails(ctx: Context, collection: string): Promise<void> {
    const p = transientAsset(ctx);
    await ctx.stub.putPrivateData(
      collection || DEFAULT_COLLECTION,
      p.ID,
      Buffer.from(stringifySorted({ ID: p.ID, AppraisedValue: p.AppraisedValue })),
    );
  }

  @Transaction(false)
  @Returns('string')
  public async ReadAsset(ctx: Context, id: string): Promise<string> {
    const b = await ctx.stub.getState(id);
    if (!b || b.length === 0) throw new Error(`The asset ${id} does not exist`);
    return b.toString();
  }

  /** The private details; members only (memberOnlyRead), on member peers only. */
  @Transaction(false)
  @Returns('string')
  public async ReadAssetDetails(ctx: Context, collection: string, id: string): Promise<string> {
    const b = await ctx.stub.getPrivateData(collection || DEFAULT_COLLECTION, id);
    if (!b || b.length === 0) throw new Error(`The asset ${id} has no private details in ${collection}`);
    return b.toString();
  }

  /** Hex sha256 of the private details as committed; '' when none. Works on every peer of the channel. */
  @Transaction(false)
  @Returns('string')
  public async GetAssetDetailsHash(ctx: Context, collection: string, id: string): Promise<string> {
    const h = await ctx.stub.getPrivateDataHash(collection || DEFAULT_COLLECTION, id);
    return Buffer.from(h ?? []).toString('hex');
  }

  /** Removes the private details and every historical value of them on every member peer. */
  @Transaction()
  public async PurgeAssetDetails(ctx: Context, collection: string, id: string): Promise<void> {
    await ctx.stub.purgePrivateData(collection || DEFAULT_COLLECTION, id);
  }

  /** A public write, to advance the chain (e.g. to watch blockToLive expire). */
  @Transaction()
  public async Tick(ctx: Context, key: string): Promise<void> {
    await ctx.stub.putState(`tick-${key}`, Buffer.from(ctx.stub.getTxID()));
  }
}
