/**
 * The records this node publishes: signs them, picks their sequence numbers
 * and knows when each must be re-announced. The Dht sends them.
 */
import type { Identity } from '../identity/identity.js';
import type { Clock } from '../util/clock.js';
import { idKey } from './id.js';
import { signRecord, type DhtRecord } from './record.js';

export const DEFAULT_REPUBLISH_MARGIN_MS = 60_000;
/** A tombstone lives at least this long, so it outlives copies of the record that are still in flight. */
export const MIN_TOMBSTONE_TTL_MS = 5_000;

interface Own {
  record: DhtRecord;
  ttlMs: number;
  republishAt: number;
  /** Set while the record reached fewer than k nodes: the next early retry's delay. */
  retryMs?: number;
}

/** First early re-announcement of a record that reached fewer than k nodes; doubles up to the normal schedule. */
export const UNDER_REPLICATED_RETRY_MS = 5_000;

export class OwnRecords {
  readonly #identity: Identity;
  readonly #clock: Clock;
  readonly #marginMs: number;
  readonly #own = new Map<string, Own>();

  constructor(identity: Identity, clock: Clock, republishMarginMs = DEFAULT_REPUBLISH_MARGIN_MS) {
    this.#identity = identity;
    this.#clock = clock;
    this.#marginMs = republishMarginMs;
  }

  get size(): number {
    return this.#own.size;
  }

  /**
   * The next sequence number: the current time in ms, or previous + 1 if
   * that is larger. Time-based so a restarted node (which forgot its last
   * seq) still supersedes its earlier records.
   */
  #nextSeq(previous: number | undefined, now: number): number {
    return Math.max(previous === undefined ? 0 : previous + 1, Math.floor(now));
  }

  /**
   * Re-announce TTL − 60 s before expiry; for TTLs under 2 min, halfway
   * through, so a short-lived record is still renewed well before it expires.
   */
  #republishDelay(ttlMs: number): number {
    return ttlMs - Math.min(this.#marginMs, ttlMs / 2);
  }

  /** Signs a new version of our record under `key` and schedules its re-announcement. */
  publish(key: Uint8Array, value: Uint8Array, ttlMs: number): DhtRecord {
    const k = idKey(key);
    const now = this.#clock.now();
    const record = signRecord(this.#identity, { key, value, seq: this.#nextSeq(this.#own.get(k)?.record.seq, now), ttlMs, now });
    this.#own.set(k, { record, ttlMs, republishAt: now + this.#republishDelay(ttlMs) });
    return record;
  }

  /**
   * Stops re-announcing `key` and returns a tombstone: an empty value with a
   * higher seq, which replaces our record wherever it is stored. It expires
   * when the withdrawn record would have, so a stale copy that is replicated
   * later still loses against it. Undefined if we publish nothing under `key`.
   */
  withdraw(key: Uint8Array): DhtRecord | undefined {
    const k = idKey(key);
    const own = this.#own.get(k);
    if (!own) return undefined;
    this.#own.delete(k);
    const now = this.#clock.now();
    const ttlMs = Math.max(own.record.expires - now, MIN_TOMBSTONE_TTL_MS);
    return signRecord(this.#identity, { key, value: new Uint8Array(0), seq: this.#nextSeq(own.record.seq, now), ttlMs, now });
  }

  /**
   * The record reached fewer than k nodes (a young or shrinking mesh): re-announce
   * it early, backing off (5 s, 10 s, …) up to the normal schedule, so nodes
   * that join later, or replace dead holders, get it within seconds rather
   * than at the next regular re-announcement minutes later.
   */
  underReplicated(key: Uint8Array): void {
    const own = this.#own.get(idKey(key));
    if (!own) return;
    const normal = this.#republishDelay(own.ttlMs);
    own.retryMs = Math.min(normal, own.retryMs === undefined ? UNDER_REPLICATED_RETRY_MS : own.retryMs * 2);
    own.republishAt = Math.min(own.republishAt, this.#clock.now() + own.retryMs);
  }

  wellReplicated(key: Uint8Array): void {
    const own = this.#own.get(idKey(key));
    if (own) own.retryMs = undefined;
  }

  has(key: Uint8Array): boolean {
    return this.#own.has(idKey(key));
  }

  /** Keys of all our records (e.g. to withdraw them all at shutdown). */
  keys(): Uint8Array[] {
    return [...this.#own.values()].map((o) => o.record.key);
  }

  /** Re-signs (new seq, new expiry) and returns every record due for re-announcement. */
  takeDue(): DhtRecord[] {
    const now = this.#clock.now();
    const out: DhtRecord[] = [];
    for (const own of this.#own.values()) {
      if (own.republishAt > now) continue;
      const r = own.record;
      own.record = signRecord(this.#identity, { key: r.key, value: r.value, seq: this.#nextSeq(r.seq, now), ttlMs: own.ttlMs, now });
      own.republishAt = now + this.#republishDelay(own.ttlMs);
      out.push(own.record);
    }
    return out;
  }

  /** Clock time of the next re-announcement, or undefined when there is nothing to re-announce. */
  nextDueAt(): number | undefined {
    let next: number | undefined;
    for (const own of this.#own.values()) if (next === undefined || own.republishAt < next) next = own.republishAt;
    return next;
  }
}
