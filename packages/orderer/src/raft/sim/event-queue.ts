/** Min-heap of timed events; ties break by insertion order so runs are reproducible. */
export class EventQueue<T> {
  #times: number[] = [];
  #seqs: number[] = [];
  #items: T[] = [];
  #seq = 0;

  get size(): number {
    return this.#items.length;
  }

  push(time: number, item: T): void {
    const times = this.#times;
    const seqs = this.#seqs;
    const items = this.#items;
    let i = items.length;
    const seq = this.#seq++;
    times.push(time);
    seqs.push(seq);
    items.push(item);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (times[p]! < time || (times[p] === time && seqs[p]! < seq)) break;
      times[i] = times[p]!;
      seqs[i] = seqs[p]!;
      items[i] = items[p]!;
      i = p;
    }
    times[i] = time;
    seqs[i] = seq;
    items[i] = item;
  }

  peekTime(): number | undefined {
    return this.#times[0];
  }

  pop(): T | undefined {
    const items = this.#items;
    if (items.length === 0) return undefined;
    const times = this.#times;
    const seqs = this.#seqs;
    const top = items[0]!;
    const lastT = times.pop()!;
    const lastS = seqs.pop()!;
    const lastI = items.pop()!;
    const n = items.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        let c = l;
        if (r < n && (times[r]! < times[l]! || (times[r] === times[l] && seqs[r]! < seqs[l]!))) c = r;
        if (lastT < times[c]! || (lastT === times[c] && lastS < seqs[c]!)) break;
        times[i] = times[c]!;
        seqs[i] = seqs[c]!;
        items[i] = items[c]!;
        i = c;
      }
      times[i] = lastT;
      seqs[i] = lastS;
      items[i] = lastI;
    }
    return top;
  }
}
