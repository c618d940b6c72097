/**
 * Names the slow consumers: the subscriptions whose buffer overflowed and
 * the subscriber nodes whose messages were dropped (backlog full while
 * dialing, skipped while down), with their drops in the last minute.
 *
 * Each tracked consumer keeps six 10-second buckets of drops (a sliding
 * minute at 10 s resolution) and its total. At most `max` consumers are
 * tracked (LRU by last drop): a consumer that stopped dropping long ago
 * makes room for a new one. Only drops are recorded, so healthy traffic
 * costs nothing here.
 */
import { LRUCache } from 'lru-cache';

export interface SlowConsumer {
  /** `subscription`: a local subscription's buffer was full; `node`: messages for that subscriber node were dropped here. */
  kind: 'subscription' | 'node';
  /** The subscription's node (this one), or the subscriber node. */
  node: string;
  /** For a subscription: its pattern, id, queue group, and the light client it forwards to (if a gateway subscription). */
  pattern?: string;
  subscription?: number;
  queue?: string;
  client?: string;
  dropsLastMinute: number;
  dropsTotal: number;
}

type Description = Omit<SlowConsumer, 'dropsLastMinute' | 'dropsTotal'>;

interface Entry {
  readonly about: Description;
  total: number;
  readonly counts: number[];
  readonly slots: number[];
}

export const DEFAULT_MAX_SLOW_CONSUMERS = 1000;
const SLOT_MS = 10_000;
const SLOTS = 6;

export class SlowConsumers {
  readonly #now: () => number;
  readonly #entries: LRUCache<string, Entry>;

  constructor(options: { now?: () => number; max?: number } = {}) {
    this.#now = options.now ?? Date.now;
    this.#entries = new LRUCache({ max: options.max ?? DEFAULT_MAX_SLOW_CONSUMERS });
  }

  /** Consumers tracked now (bounded by `max`). */
  get size(): number {
    return this.#entries.size;
  }

  /** Counts `n` drops of consumer `key`; `describe` is called only the first time the key is seen. */
  record(key: string, describe: () => Description, n = 1): void {
    let e = this.#entries.get(key);
    if (e === undefined) {
      e = { about: describe(), total: 0, counts: new Array<number>(SLOTS).fill(0), slots: new Array<number>(SLOTS).fill(-1) };
      this.#entries.set(key, e);
    }
    const slot = Math.floor(this.#now() / SLOT_MS);
    const i = slot % SLOTS;
    if (e.slots[i] !== slot) {
      e.slots[i] = slot;
      e.counts[i] = 0;
    }
    e.counts[i]! += n;
    e.total += n;
  }

  /** The `n` consumers with the most drops in the last minute (those with none left out). */
  top(n = 10): SlowConsumer[] {
    const slot = Math.floor(this.#now() / SLOT_MS);
    const out: SlowConsumer[] = [];
    for (const e of this.#entries.values()) {
      let recent = 0;
      for (let i = 0; i < SLOTS; i++) if (e.slots[i]! > slot - SLOTS) recent += e.counts[i]!;
      if (recent > 0) out.push({ ...e.about, dropsLastMinute: recent, dropsTotal: e.total });
    }
    out.sort((x, y) => y.dropsLastMinute - x.dropsLastMinute);
    return out.slice(0, n);
  }

  clear(): void {
    this.#entries.clear();
  }
}
