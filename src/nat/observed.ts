/**
 * The addresses peers saw this node's packets come from (HELLO_ACK `obs`,
 * DIAL_BACK_RESULT), bounded. A node is behind a NAT when the host most
 * peers saw is not one of its own interface addresses. Ports are not
 * compared: quinn dials from its own client socket, so the observed port is
 * never the listen port, NAT or not.
 */
import { networkInterfaces } from 'node:os';
import type { PeerAddress } from '../transport/types.js';

export const DEFAULT_MAX_OBSERVED_HOSTS = 16;
/** Reporters remembered per host (distinct node IDs). */
const MAX_REPORTERS = 16;

export interface ObservedHost {
  host: string;
  /** Distinct peers that reported it (up to 16). */
  reporters: number;
  lastSeen: number;
}

export interface ObservedStats {
  /** The host most peers saw, if any. */
  host: string | undefined;
  /** True when that host is not an address of this machine. */
  behindNat: boolean;
  hosts: ObservedHost[];
  /** Observations received in total. */
  observations: number;
}

/** Every address of this machine's interfaces (loopback included). */
export function localHosts(): Set<string> {
  const out = new Set<string>();
  for (const addrs of Object.values(networkInterfaces())) for (const a of addrs ?? []) out.add(a.address);
  return out;
}

export class ObservedAddresses {
  readonly #hosts = new Map<string, { reporters: Set<string>; lastSeen: number }>();
  readonly #max: number;
  readonly #local: () => Set<string>;
  readonly #now: () => number;
  #observations = 0;
  /** Called when the most-reported host changes. */
  onChange: ((host: string) => void) | undefined;

  constructor(options: { maxHosts?: number; localHosts?: () => Set<string>; now?: () => number } = {}) {
    this.#max = options.maxHosts ?? DEFAULT_MAX_OBSERVED_HOSTS;
    this.#local = options.localHosts ?? localHosts;
    this.#now = options.now ?? Date.now;
  }

  record(address: PeerAddress, reporterHex: string): void {
    this.#observations++;
    const before = this.host;
    let entry = this.#hosts.get(address.host);
    if (!entry) {
      if (this.#hosts.size >= this.#max) this.#evictOldest();
      entry = { reporters: new Set(), lastSeen: 0 };
      this.#hosts.set(address.host, entry);
    }
    entry.lastSeen = this.#now();
    if (entry.reporters.size < MAX_REPORTERS) entry.reporters.add(reporterHex);
    const after = this.host;
    if (after !== undefined && after !== before) this.onChange?.(after);
  }

  /** The host the most distinct peers reported (the latest on a tie). */
  get host(): string | undefined {
    let best: string | undefined;
    let bestScore = -1;
    let bestSeen = -1;
    for (const [host, e] of this.#hosts) {
      if (e.reporters.size > bestScore || (e.reporters.size === bestScore && e.lastSeen > bestSeen)) {
        best = host;
        bestScore = e.reporters.size;
        bestSeen = e.lastSeen;
      }
    }
    return best;
  }

  get behindNat(): boolean {
    const host = this.host;
    return host !== undefined && !this.#local().has(host);
  }

  stats(): ObservedStats {
    const host = this.host;
    return {
      host,
      behindNat: host !== undefined && !this.#local().has(host),
      hosts: [...this.#hosts].map(([h, e]) => ({ host: h, reporters: e.reporters.size, lastSeen: e.lastSeen })),
      observations: this.#observations,
    };
  }

  #evictOldest(): void {
    let oldest: string | undefined;
    let seen = Infinity;
    for (const [host, e] of this.#hosts) if (e.lastSeen < seen) [oldest, seen] = [host, e.lastSeen];
    if (oldest !== undefined) this.#hosts.delete(oldest);
  }
}
