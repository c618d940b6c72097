/**
 * Multi-valued, bounded TTL store: key → (publisher → record).
 *
 * Every operation touches one key's own map and a few counters, never the
 * whole store. Expired records are invisible as soon as they expire and are
 * removed by an incremental sweep that resumes where the last one stopped.
 */
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import { bytesEqual, idKey } from './id.js';
import { StoreRefusedError, STORE_REFUSAL_REASONS, type StoreRefusalReason } from './errors.js';
import { MAX_WIRE_VALUE_BYTES } from './constants.js';
import { toWireRecord, verifyRecord, type DhtRecord, type WireRecord } from './record.js';
import { ConfigError } from '../util/errors.js';

export const DEFAULT_MAX_RECORD_SIZE = 16 * 1024;
export const DEFAULT_MAX_RECORDS_PER_KEY = 1000;
export const DEFAULT_MAX_RECORDS_PER_PUBLISHER = 1000;
export const DEFAULT_MAX_RECORDS = 100_000;
export const DEFAULT_MAX_TTL_MS = 60 * 60 * 1000;
export const DEFAULT_MAX_CLOCK_SKEW_MS = 30_000;
export const DEFAULT_SWEEP_INTERVAL_MS = 60_000;
export const DEFAULT_SWEEP_BATCH = 10_000;

export interface RecordStoreEvents {
  stored?(record: DhtRecord): void;
  expired?(count: number): void;
  refused?(reason: StoreRefusalReason): void;
}

export interface RecordStoreComponents {
  clock?: Clock;
  events?: RecordStoreEvents;
}

export interface RecordStoreInit {
  /** Largest record value accepted, in bytes. Default 16 KiB; at most 64 KiB (the wire limit). */
  maxRecordSize?: number;
  /** Most records (distinct publishers) under one key. Default 1000. */
  maxRecordsPerKey?: number;
  /** Most records one publisher may hold in this store. Default 1000. */
  maxRecordsPerPublisher?: number;
  /** Most records in total. Default 100,000. */
  maxRecords?: number;
  /** Longest remaining lifetime a record may have when stored. Default 1 h. */
  maxTtlMs?: number;
  /** Tolerance added to maxTtlMs for publishers whose clock runs ahead of ours. Default 30 s. */
  maxClockSkewMs?: number;
  /** Period of the background sweep of expired records; 0 disables the timer. Default 60 s. */
  sweepIntervalMs?: number;
  /** Most records examined per sweep tick. Default 10,000. */
  sweepBatch?: number;
}

export type StoreOutcome = 'stored' | 'replaced' | 'unchanged';

interface Entry {
  record: DhtRecord;
  /** When this record last arrived (stored, or re-sent unchanged): replication skips recently received records. */
  touchedAt: number;
  /** Wire form, built on first read: popular records are served many times. */
  wire?: WireRecord;
}

export interface RecordStoreStats {
  records: number;
  keys: number;
  stored: number;
  expired: number;
  refused: Record<StoreRefusalReason, number>;
}

export class RecordStore {
  readonly maxRecordSize: number;
  readonly maxRecordsPerKey: number;
  readonly maxRecordsPerPublisher: number;
  readonly maxRecords: number;
  readonly maxTtlMs: number;
  readonly maxClockSkewMs: number;
  readonly sweepIntervalMs: number;
  readonly sweepBatch: number;

  readonly #clock: Clock;
  readonly #events: RecordStoreEvents;
  readonly #byKey = new Map<string, Map<string, Entry>>();
  readonly #perPublisher = new Map<string, number>();
  #records = 0;
  #stored = 0;
  #expired = 0;
  readonly #refused = Object.fromEntries(STORE_REFUSAL_REASONS.map((r) => [r, 0])) as Record<StoreRefusalReason, number>;
  #sweepCursor: Iterator<[string, Map<string, Entry>]> | undefined;
  #replicationCursor: Iterator<Map<string, Entry>> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(components: RecordStoreComponents = {}, init: RecordStoreInit = {}) {
    this.#clock = components.clock ?? systemClock;
    this.#events = components.events ?? {};
    this.maxRecordSize = init.maxRecordSize ?? DEFAULT_MAX_RECORD_SIZE;
    this.maxRecordsPerKey = init.maxRecordsPerKey ?? DEFAULT_MAX_RECORDS_PER_KEY;
    this.maxRecordsPerPublisher = init.maxRecordsPerPublisher ?? DEFAULT_MAX_RECORDS_PER_PUBLISHER;
    this.maxRecords = init.maxRecords ?? DEFAULT_MAX_RECORDS;
    this.maxTtlMs = init.maxTtlMs ?? DEFAULT_MAX_TTL_MS;
    this.maxClockSkewMs = init.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
    this.sweepIntervalMs = init.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    this.sweepBatch = init.sweepBatch ?? DEFAULT_SWEEP_BATCH;
    if (this.maxRecordSize > MAX_WIRE_VALUE_BYTES) {
      throw new ConfigError(`maxRecordSize ${this.maxRecordSize} exceeds the wire limit of ${MAX_WIRE_VALUE_BYTES} bytes`);
    }
  }

  start(): void {
    if (this.#timer || this.sweepIntervalMs <= 0) return;
    this.#timer = setInterval(() => this.sweep(this.sweepBatch), this.sweepIntervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  get size(): number {
    return this.#records;
  }

  /**
   * Stores a record or throws StoreRefusedError. Checks run cheapest first;
   * the signature is verified only when the record would actually change the
   * store, so re-sent copies (replication) cost a map lookup, not a verify.
   */
  put(record: DhtRecord): StoreOutcome {
    if (record.value.length > this.maxRecordSize) {
      return this.#refuse('too_large', `${record.value.length} bytes > ${this.maxRecordSize}`);
    }
    const now = this.#clock.now();
    if (!(record.expires > now)) return this.#refuse('expired');
    if (record.expires > now + this.maxTtlMs + this.maxClockSkewMs) {
      return this.#refuse('ttl_too_long', `expires in ${record.expires - now} ms, at most ${this.maxTtlMs} ms allowed`);
    }
    const keyStr = idKey(record.key);
    const pubStr = idKey(record.publisher);
    let records = this.#byKey.get(keyStr);
    let existing = records?.get(pubStr);
    if (existing && existing.record.expires <= now) {
      this.#delete(keyStr, records!, pubStr);
      this.#expired++;
      this.#events.expired?.(1);
      records = this.#byKey.get(keyStr);
      existing = undefined;
    }
    if (existing) {
      const old = existing.record;
      if (old.seq > record.seq) return this.#refuse('stale', `seq ${record.seq} < stored ${old.seq}`);
      if (old.seq === record.seq) {
        // Idempotent: an identical copy proves someone is replicating it.
        if (bytesEqual(old.signature, record.signature)) existing.touchedAt = now;
        return 'unchanged';
      }
      if (!verifyRecord(record)) return this.#refuse('bad_signature');
      existing.record = record;
      existing.touchedAt = now;
      existing.wire = undefined;
      this.#accepted(record);
      return 'replaced';
    }
    if (records && records.size >= this.maxRecordsPerKey && this.#purgeExpired(keyStr, records, now) === 0) {
      return this.#refuse('key_full', `${records.size} records under this key`);
    }
    if ((this.#perPublisher.get(pubStr) ?? 0) >= this.maxRecordsPerPublisher) return this.#refuse('publisher_full');
    if (this.#records >= this.maxRecords) return this.#refuse('store_full');
    if (!verifyRecord(record)) return this.#refuse('bad_signature');
    if (!records) {
      records = new Map();
      this.#byKey.set(keyStr, records);
    }
    records.set(pubStr, { record, touchedAt: now });
    this.#perPublisher.set(pubStr, (this.#perPublisher.get(pubStr) ?? 0) + 1);
    this.#records++;
    this.#accepted(record);
    return 'stored';
  }

  /** The live records under `key`. */
  get(key: Uint8Array): DhtRecord[] {
    const records = this.#byKey.get(idKey(key));
    if (!records) return [];
    const now = this.#clock.now();
    const out: DhtRecord[] = [];
    for (const e of records.values()) if (e.record.expires > now) out.push(e.record);
    return out;
  }

  /**
   * Live records under `key` in wire form, up to `maxBytes` of values (at
   * least one record is returned when any exists, so a single large record
   * is always reachable).
   */
  getWire(key: Uint8Array, maxBytes: number): WireRecord[] {
    const records = this.#byKey.get(idKey(key));
    if (!records) return [];
    const now = this.#clock.now();
    const out: WireRecord[] = [];
    let bytes = 0;
    for (const e of records.values()) {
      if (e.record.expires <= now) continue;
      bytes += e.record.value.length + 150;
      if (bytes > maxBytes && out.length > 0) break;
      out.push((e.wire ??= toWireRecord(e.record)));
    }
    return out;
  }

  /** Removes the record of `publisher` under `key` (local only). */
  remove(key: Uint8Array, publisher: Uint8Array): boolean {
    const keyStr = idKey(key);
    const records = this.#byKey.get(keyStr);
    if (!records) return false;
    return this.#delete(keyStr, records, idKey(publisher));
  }

  /**
   * Removes expired records, examining at most `budget` records; the next call
   * resumes after the last key examined. Returns the number removed.
   */
  sweep(budget = Infinity): number {
    const now = this.#clock.now();
    let examined = 0;
    let removed = 0;
    let restarted = false;
    // An unbounded sweep is one complete pass from the start.
    if (budget === Infinity) this.#sweepCursor = undefined;
    while (examined < budget) {
      this.#sweepCursor ??= this.#byKey.entries();
      const next = this.#sweepCursor.next();
      if (next.done) {
        this.#sweepCursor = undefined;
        // One full pass per call at most.
        if (restarted || budget === Infinity) break;
        restarted = true;
        continue;
      }
      const [keyStr, records] = next.value;
      examined += records.size;
      removed += this.#purgeExpired(keyStr, records, now);
    }
    return removed;
  }

  /**
   * Up to `max` live records due for replication: not received within
   * `quietMs` (someone else replicated them recently) and not about to expire.
   * Marks them as just sent. Scans at most 4 × max records per call,
   * resuming where the previous call stopped.
   */
  takeForReplication(max: number, quietMs: number, minRemainingMs: number): DhtRecord[] {
    const now = this.#clock.now();
    const out: DhtRecord[] = [];
    let scanned = 0;
    let restarted = false;
    while (out.length < max && scanned < max * 4) {
      this.#replicationCursor ??= this.#byKey.values();
      const next = this.#replicationCursor.next();
      if (next.done) {
        this.#replicationCursor = undefined;
        if (restarted) break;
        restarted = true;
        continue;
      }
      for (const e of next.value.values()) {
        if (out.length >= max) break;
        scanned++;
        if (e.record.expires - now <= minRemainingMs || now - e.touchedAt < quietMs) continue;
        e.touchedAt = now;
        out.push(e.record);
      }
    }
    return out;
  }

  stats(): RecordStoreStats {
    return {
      records: this.#records,
      keys: this.#byKey.size,
      stored: this.#stored,
      expired: this.#expired,
      refused: { ...this.#refused },
    };
  }

  #accepted(record: DhtRecord): void {
    this.#stored++;
    this.#events.stored?.(record);
  }

  #refuse(reason: StoreRefusalReason, detail?: string): never {
    this.#refused[reason]++;
    this.#events.refused?.(reason);
    throw new StoreRefusedError(reason, detail);
  }

  #purgeExpired(keyStr: string, records: Map<string, Entry>, now: number): number {
    let removed = 0;
    for (const [pubStr, e] of records) {
      if (e.record.expires <= now) {
        this.#delete(keyStr, records, pubStr);
        removed++;
      }
    }
    if (removed > 0) {
      this.#expired += removed;
      this.#events.expired?.(removed);
    }
    return removed;
  }

  #delete(keyStr: string, records: Map<string, Entry>, pubStr: string): boolean {
    if (!records.delete(pubStr)) return false;
    this.#records--;
    const n = (this.#perPublisher.get(pubStr) ?? 1) - 1;
    if (n <= 0) this.#perPublisher.delete(pubStr);
    else this.#perPublisher.set(pubStr, n);
    if (records.size === 0) this.#byKey.delete(keyStr);
    return true;
  }
}
