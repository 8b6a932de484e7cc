/**
 * An in-process transport for unit tests: a hub delivers frames between the nodes registered on it,
 * asynchronously (a microtask later) so no call re-enters the sender. `partition` and `dropIf` drop frames.
 */
import type { ClusterMember, ClusterTransport, FrameHandler } from './types.js';

export class MemoryHub {
  readonly #nodes = new Map<string, MemoryTransport>();
  readonly #cut = new Set<string>();
  #drop: ((channel: string, from: string, to: string, data: Uint8Array) => boolean) | undefined;

  /** The transport of the orderer named `name` (the name is its member id on every channel). */
  transport(name: string): ClusterTransport {
    const t = new MemoryTransport(this, name);
    this.#nodes.set(name, t);
    return t;
  }

  /** Drops every frame between a and b (both ways) until `heal`. */
  partition(a: string, b: string): void {
    this.#cut.add(`${a}|${b}`).add(`${b}|${a}`);
  }

  heal(): void {
    this.#cut.clear();
  }

  /** Drops every frame for which `fn` says so (lost messages); `undefined` stops dropping. */
  dropIf(fn: ((channel: string, from: string, to: string, data: Uint8Array) => boolean) | undefined): void {
    this.#drop = fn;
  }

  isolate(name: string): void {
    for (const other of this.#nodes.keys()) if (other !== name) this.partition(name, other);
  }

  remove(name: string): void {
    this.#nodes.delete(name);
  }

  deliver(channel: string, from: string, to: string, data: Uint8Array): void {
    if (this.#cut.has(`${from}|${to}`)) return;
    if (this.#drop?.(channel, from, to, data)) return;
    const target = this.#nodes.get(to);
    if (!target) return;
    queueMicrotask(() => target.receive(channel, from, data));
  }
}

class MemoryTransport implements ClusterTransport {
  readonly #hub: MemoryHub;
  readonly #name: string;
  readonly #channels = new Map<string, { members: Set<string>; handler: FrameHandler }>();
  #stopped = false;

  constructor(hub: MemoryHub, name: string) {
    this.#hub = hub;
    this.#name = name;
  }

  join(channel: string, _self: string, members: readonly ClusterMember[], handler: FrameHandler): void {
    this.#channels.set(channel, { members: new Set(members.map((m) => m.id)), handler });
  }

  updateMembers(channel: string, members: readonly ClusterMember[]): void {
    const ch = this.#channels.get(channel);
    if (ch) ch.members = new Set(members.map((m) => m.id));
  }

  leave(channel: string): void {
    this.#channels.delete(channel);
  }

  send(channel: string, to: string, data: Uint8Array): void {
    if (this.#stopped) return;
    this.#hub.deliver(channel, this.#name, to, data);
  }

  receive(channel: string, from: string, data: Uint8Array): void {
    if (this.#stopped) return;
    const ch = this.#channels.get(channel);
    // Same rule as the real transport: only the channel's consenters are heard.
    if (!ch?.members.has(from)) return;
    ch.handler(from, data);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#hub.remove(this.#name);
  }
}
