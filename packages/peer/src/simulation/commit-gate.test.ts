import { describe, expect, it } from 'vitest';
import { CommitGate } from './commit-gate.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('CommitGate', () => {
  it('lets simulations share the gate and makes a commit wait for all of them', async () => {
    const gate = new CommitGate();
    const r1 = await gate.acquireShared();
    const r2 = await gate.acquireShared();
    const order: string[] = [];
    const commit = gate.exclusive(() => {
      order.push('commit');
    });
    await tick();
    expect(order).toEqual([]);
    r1();
    r1(); // idempotent
    await tick();
    expect(order).toEqual([]);
    r2();
    await commit;
    expect(order).toEqual(['commit']);
    expect(gate.activeSimulations).toBe(0);
  });

  it('prefers a waiting commit over new simulations, then admits them together', async () => {
    const gate = new CommitGate();
    const r1 = await gate.acquireShared();
    const order: string[] = [];
    const commit = gate.exclusive(async () => {
      order.push('commit');
    });
    const later = gate.acquireShared().then((release) => {
      order.push('sim');
      return release;
    });
    const later2 = gate.acquireShared().then((release) => {
      order.push('sim');
      return release;
    });
    await tick();
    expect(order).toEqual([]);
    r1();
    await commit;
    const [a, b] = await Promise.all([later, later2]);
    expect(order).toEqual(['commit', 'sim', 'sim']);
    expect(gate.activeSimulations).toBe(2);
    a();
    b();
    expect(gate.activeSimulations).toBe(0);
  });

  it('releases the gate when a commit throws', async () => {
    const gate = new CommitGate();
    await expect(
      gate.exclusive(() => {
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    const release = await gate.acquireShared();
    release();
  });
});
