/**
 * Multi-valued, bounded TTL store: key → (publisher → record).
 *
 * Every operation touches one key's own map and a few counters, never the
 * whole store. Expired records are invisible as soon as they expire and are
 * removed by an incremental sweep that resumes where the last one stopped.
 */
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import { bytesEqual, idKey } from './id.js';
import { StoreRefusedError, STORE_REFUSAL_REASONS, type StoreRefusalReason } from './errors.js';
import { MAX_WIRE_VALUE_BYTES } from './constants.js';
import { toWireRecord, verifyRecord, type DhtRecord, type WireRecord } from './record.js';
import { intOption } from '../util/options.js';

export const DEFAULT_MAX_RECORD_SIZE = 16 * 1024;
export const DEFAULT_MAX_RECORDS_PER_KEY = 1000;
export const DEFAULT_MAX_RECORDS_PER_PUBLISHER = 1000;
export const DEFAULT_MAX_RECORDS = 100_000;
/** Accounted bytes of all live records (values plus RECORD_OVERHEAD_BYTES each). */
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
/** Accounted bytes of one publisher's live records. */
export const DEFAULT_MAX_BYTES_PER_PUBLISHER = 1024 * 1024;
/** Accounted bytes under one key: what one VALUE answer carries, so every stored record can be returned. */
export const DEFAULT_MAX_BYTES_PER_KEY = 256 * 1024;
/** Tombstones held in total, and per publisher; past either the oldest is dropped. */
export const DEFAULT_MAX_TOMBSTONES = 100_000;
export const DEFAULT_MAX_TOMBSTONES_PER_PUBLISHER = 1000;
export const DEFAULT_MAX_TTL_MS = 60 * 60 * 1000;
export const DEFAULT_MAX_CLOCK_SKEW_MS = 30_000;
export const DEFAULT_SWEEP_INTERVAL_MS = 60_000;
export const DEFAULT_SWEEP_BATCH = 10_000;

export const RECORD_STORE_DEFAULTS = Object.freeze({
  maxRecordSize: DEFAULT_MAX_RECORD_SIZE,
  maxRecordsPerKey: DEFAULT_MAX_RECORDS_PER_KEY,
  maxRecordsPerPublisher: DEFAULT_MAX_RECORDS_PER_PUBLISHER,
  maxRecords: DEFAULT_MAX_RECORDS,
  maxBytes: DEFAULT_MAX_BYTES,
  maxBytesPerPublisher: DEFAULT_MAX_BYTES_PER_PUBLISHER,
  maxBytesPerKey: DEFAULT_MAX_BYTES_PER_KEY,
  maxTombstones: DEFAULT_MAX_TOMBSTONES,
  maxTombstonesPerPublisher: DEFAULT_MAX_TOMBSTONES_PER_PUBLISHER,
  maxTtlMs: DEFAULT_MAX_TTL_MS,
  maxClockSkewMs: DEFAULT_MAX_CLOCK_SKEW_MS,
  sweepIntervalMs: DEFAULT_SWEEP_INTERVAL_MS,
  sweepBatch: DEFAULT_SWEEP_BATCH,
});
/**
 * Bytes a record costs besides its value: key, public key, signature, seq,
 * expiry and their CBOR framing (what a VALUE answer carries per record).
 */
export const RECORD_OVERHEAD_BYTES = 160;

/** The accounted size of a record. */
export function recordCost(r: DhtRecord): number {
  return r.value.length + RECORD_OVERHEAD_BYTES;
}

export interface RecordStoreEvents {
  stored?(record: DhtRecord): void;
  expired?(count: number): void;
  refused?(reason: StoreRefusalReason): void;
}

export interface RecordStoreComponents {
  clock?: Clock;
  events?: RecordStoreEvents;
  /**
   * Whether the publisher with this public key is present: holds a verified
   * connection to this node now. Records of absent publishers are the first
   * to make room under a full key (see put()). Default: nobody is.
   */
  isPresent?(publisher: Uint8Array): boolean;
}

/**
 * Who handed a record to the store. `source` is the address of the verified
 * connection it came over (never a field the peer claims), or `self` for
 * this node's own records.
 */
export interface StoreOrigin {
  role: 'node' | 'client';
  source: string;
}

export const SELF_ORIGIN: StoreOrigin = Object.freeze({ role: 'node', source: 'self' });
/** Origin of records put without one (tests, tools): may not evict anything. */
const UNKNOWN_ORIGIN: StoreOrigin = Object.freeze({ role: 'node', source: '' });

export interface RecordStoreInit {
  /** Largest record value accepted, in bytes. Default 16 KiB; at most 64 KiB (the wire limit). */
  maxRecordSize?: number;
  /** Most live records (distinct publishers) under one key. Default 1000. */
  maxRecordsPerKey?: number;
  /** Most accounted bytes of live records under one key. Default 256 KiB. */
  maxBytesPerKey?: number;
  /** Most live records one publisher may hold in this store. Default 1000. */
  maxRecordsPerPublisher?: number;
  /** Most accounted bytes of one publisher's live records. Default 1 MiB. */
  maxBytesPerPublisher?: number;
  /** Most live records in total. Default 100,000. */
  maxRecords?: number;
  /** Most accounted bytes of live records in total. Default 64 MiB. */
  maxBytes?: number;
  /** Most tombstones held (the oldest is dropped past it). Default 100,000. */
  maxTombstones?: number;
  /** Most tombstones of one publisher (its oldest is dropped past it). Default 1000. */
  maxTombstonesPerPublisher?: number;
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
  /** recordCost(record). */
  cost: number;
  /** StoreOrigin.source of the copy held. */
  source: string;
}

/** The records under one key, and the live ones' count and bytes. */
interface Bucket {
  entries: Map<string, Entry>;
  live: number;
  bytes: number;
}

interface PublisherUsage {
  records: number;
  bytes: number;
  /** This publisher's tombstones (`key/publisher`), oldest first. */
  tombstones: Set<string>;
}

export interface RecordStoreStats {
  /** Live records (tombstones not included). */
  records: number;
  keys: number;
  /** Accounted bytes of live records, and their bound. */
  bytes: number;
  maxBytes: number;
  /** Publishers with records here, and the largest one's bytes. */
  publishers: number;
  maxPublisherBytes: number;
  tombstones: number;
  stored: number;
  expired: number;
  /** Records removed to make room: under a full key for a present publisher, and tombstones past their bounds. */
  evicted: number;
  tombstonesDropped: number;
  refused: Record<StoreRefusalReason, number>;
}

const isTombstone = (r: DhtRecord): boolean => r.value.length === 0;

export class RecordStore {
  readonly maxRecordSize: number;
  readonly maxRecordsPerKey: number;
  readonly maxBytesPerKey: number;
  readonly maxRecordsPerPublisher: number;
  readonly maxBytesPerPublisher: number;
  readonly maxRecords: number;
  readonly maxBytes: number;
  readonly maxTombstones: number;
  readonly maxTombstonesPerPublisher: number;
  readonly maxTtlMs: number;
  readonly maxClockSkewMs: number;
  readonly sweepIntervalMs: number;
  readonly sweepBatch: number;

  readonly #clock: Clock;
  readonly #events: RecordStoreEvents;
  readonly #isPresent: (publisher: Uint8Array) => boolean;
  readonly #byKey = new Map<string, Bucket>();
  readonly #perPublisher = new Map<string, PublisherUsage>();
  /** Every tombstone (`key/publisher` → its key and publisher), oldest first. */
  readonly #tombstones = new Map<string, [string, string]>();
  #records = 0;
  #bytes = 0;
  #stored = 0;
  #expired = 0;
  #evicted = 0;
  #tombstonesDropped = 0;
  readonly #refused = Object.fromEntries(STORE_REFUSAL_REASONS.map((r) => [r, 0])) as Record<StoreRefusalReason, number>;
  #sweepCursor: Iterator<[string, Bucket]> | undefined;
  #replicationCursor: Iterator<Bucket> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(components: RecordStoreComponents = {}, init: RecordStoreInit = {}) {
    this.#clock = components.clock ?? systemClock;
    this.#events = components.events ?? {};
    this.#isPresent = components.isPresent ?? (() => false);
    this.maxRecordSize = init.maxRecordSize ?? DEFAULT_MAX_RECORD_SIZE;
    this.maxRecordsPerKey = init.maxRecordsPerKey ?? DEFAULT_MAX_RECORDS_PER_KEY;
    this.maxBytesPerKey = init.maxBytesPerKey ?? DEFAULT_MAX_BYTES_PER_KEY;
    this.maxRecordsPerPublisher = init.maxRecordsPerPublisher ?? DEFAULT_MAX_RECORDS_PER_PUBLISHER;
    this.maxBytesPerPublisher = init.maxBytesPerPublisher ?? DEFAULT_MAX_BYTES_PER_PUBLISHER;
    this.maxRecords = init.maxRecords ?? DEFAULT_MAX_RECORDS;
    this.maxBytes = init.maxBytes ?? DEFAULT_MAX_BYTES;
    this.maxTombstones = init.maxTombstones ?? DEFAULT_MAX_TOMBSTONES;
    this.maxTombstonesPerPublisher = init.maxTombstonesPerPublisher ?? DEFAULT_MAX_TOMBSTONES_PER_PUBLISHER;
    this.maxTtlMs = init.maxTtlMs ?? DEFAULT_MAX_TTL_MS;
    this.maxClockSkewMs = init.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
    this.sweepIntervalMs = init.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    this.sweepBatch = init.sweepBatch ?? DEFAULT_SWEEP_BATCH;
    // The wire limit bounds a record; every byte bound holds at least one record of that size.
    intOption('record store option maxRecordSize', this.maxRecordSize, 1, MAX_WIRE_VALUE_BYTES);
    const largest = this.maxRecordSize + RECORD_OVERHEAD_BYTES;
    for (const [name, v] of [['maxBytesPerKey', this.maxBytesPerKey], ['maxBytesPerPublisher', this.maxBytesPerPublisher], ['maxBytes', this.maxBytes]] as const) {
      intOption(`record store option ${name} (one record of maxRecordSize is ${largest} bytes)`, v, largest);
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

  /** Live records held (tombstones not included). */
  get size(): number {
    return this.#records;
  }

  /**
   * Stores a record or throws StoreRefusedError. Checks run cheapest first;
   * the signature is verified only when the record would actually change the
   * store, so re-sent copies (replication) cost a map lookup, not a verify.
   *
   * Live records count against every bound (records and bytes, per key, per
   * publisher, in total); tombstones against their own bounds only, where the
   * oldest makes room, so withdrawing never costs a publisher its quota.
   *
   * A full key makes room for a newcomer only when the newcomer's publisher
   * is present (this node's own record, or a publisher with a verified
   * connection here now): first by evicting a record whose publisher is not
   * present (a record relayed for an identity nobody runs, or one whose
   * publisher is gone), else by evicting a record of the source address
   * holding the most records under the key, when the newcomer's source holds
   * fewer. So a flood of records for made-up identities, or from one address,
   * cannot close a popular key to a node that is really there.
   */
  put(record: DhtRecord, origin: StoreOrigin = UNKNOWN_ORIGIN): StoreOutcome {
    if (origin.role !== 'node') return this.#refuse('not_a_node');
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
    let bucket = this.#byKey.get(keyStr);
    let existing = bucket?.entries.get(pubStr);
    if (existing && existing.record.expires <= now) {
      this.#delete(keyStr, bucket!, pubStr);
      this.#countExpired(1);
      bucket = this.#byKey.get(keyStr);
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
    }
    const cost = recordCost(record);
    const victims = isTombstone(record) ? [] : this.#admitLive(keyStr, bucket, pubStr, existing, record, cost, origin, now);
    if (!verifyRecord(record)) return this.#refuse('bad_signature');
    for (const victim of victims) this.#delete(keyStr, bucket!, victim);
    this.#evicted += victims.length;
    if (existing) this.#delete(keyStr, bucket!, pubStr);
    this.#insert(keyStr, pubStr, { record, touchedAt: now, cost, source: origin.source });
    this.#accepted(record);
    return existing ? 'replaced' : 'stored';
  }

  /**
   * Checks the live-record bounds for `record` (replacing `existing`, if
   * any) and returns the publishers whose records under the key must be
   * evicted to make room; throws the refusal when there is no room.
   */
  #admitLive(
    keyStr: string,
    bucket: Bucket | undefined,
    pubStr: string,
    existing: Entry | undefined,
    record: DhtRecord,
    cost: number,
    origin: StoreOrigin,
    now: number,
  ): string[] {
    const freed = existing && !isTombstone(existing.record) ? existing.cost : 0;
    const adds = freed > 0 ? 0 : 1;
    let victims: string[] = [];
    if (bucket && (bucket.live + adds > this.maxRecordsPerKey || bucket.bytes - freed + cost > this.maxBytesPerKey)) {
      this.#purgeExpired(keyStr, bucket, now);
      const fits = (b: number, n: number): boolean => n + adds <= this.maxRecordsPerKey && b - freed + cost <= this.maxBytesPerKey;
      if (!fits(bucket.bytes, bucket.live)) {
        victims = this.#makeRoom(bucket, pubStr, record, origin, fits);
        if (victims.length === 0) return this.#refuse('key_full', `${bucket.live} records, ${bucket.bytes} bytes under this key`);
      }
    }
    const { records = 0, bytes = 0 } = this.#perPublisher.get(pubStr) ?? {};
    if (records + adds > this.maxRecordsPerPublisher || bytes - freed + cost > this.maxBytesPerPublisher) {
      return this.#refuse('publisher_full', `${records} records, ${bytes} bytes of this publisher`);
    }
    const victimBytes = victims.reduce((sum, v) => sum + bucket!.entries.get(v)!.cost, 0);
    if (this.#records - victims.length + adds > this.maxRecords || this.#bytes - victimBytes - freed + cost > this.maxBytes) {
      return this.#refuse('store_full', `${this.#records} records, ${this.#bytes} bytes`);
    }
    return victims;
  }

  /** Victims that make `record` fit a full key (see put()), or none when it may not evict. */
  #makeRoom(bucket: Bucket, pubStr: string, record: DhtRecord, origin: StoreOrigin, fits: (bytes: number, live: number) => boolean): string[] {
    if (origin.source === '' || (origin.source !== SELF_ORIGIN.source && !this.#isPresent(record.publisher))) return [];
    const victims: string[] = [];
    let bytes = bucket.bytes;
    let live = bucket.live;
    const take = (p: string, e: Entry): boolean => {
      victims.push(p);
      bytes -= e.cost;
      live--;
      return fits(bytes, live);
    };
    const candidates = [...bucket.entries].filter(([p, e]) => p !== pubStr && !isTombstone(e.record) && e.source !== SELF_ORIGIN.source);
    for (const [p, e] of candidates) {
      if (!this.#isPresent(e.record.publisher) && take(p, e)) return victims;
    }
    // Everyone left is present: the source holding the most records gives way, while it holds more than the newcomer's.
    const bySource = new Map<string, Array<[string, Entry]>>();
    for (const c of candidates) {
      if (victims.includes(c[0])) continue;
      const list = bySource.get(c[1].source);
      if (list) list.push(c);
      else bySource.set(c[1].source, [c]);
    }
    for (;;) {
      let largest: Array<[string, Entry]> | undefined;
      for (const list of bySource.values()) if (!largest || list.length > largest.length) largest = list;
      const own = bySource.get(origin.source)?.length ?? 0;
      if (!largest || largest.length <= own + 1) return [];
      const [p, e] = largest.shift()!;
      if (take(p, e)) return victims;
    }
  }

  /** The live records under `key` (tombstones included: they supersede older records of their publisher). */
  get(key: Uint8Array): DhtRecord[] {
    const bucket = this.#byKey.get(idKey(key));
    if (!bucket) return [];
    const now = this.#clock.now();
    const out: DhtRecord[] = [];
    for (const e of bucket.entries.values()) if (e.record.expires > now) out.push(e.record);
    return out;
  }

  /**
   * Live records under `key` in wire form, up to `maxBytes` of values (at
   * least one record is returned when any exists, so a single large record
   * is always reachable).
   */
  getWire(key: Uint8Array, maxBytes: number): WireRecord[] {
    const bucket = this.#byKey.get(idKey(key));
    if (!bucket) return [];
    const now = this.#clock.now();
    const out: WireRecord[] = [];
    let bytes = 0;
    for (const e of bucket.entries.values()) {
      if (e.record.expires <= now) continue;
      bytes += e.cost;
      if (bytes > maxBytes && out.length > 0) break;
      out.push((e.wire ??= toWireRecord(e.record)));
    }
    return out;
  }

  /** Removes the record of `publisher` under `key` (local only). */
  remove(key: Uint8Array, publisher: Uint8Array): boolean {
    const keyStr = idKey(key);
    const bucket = this.#byKey.get(keyStr);
    if (!bucket) return false;
    return this.#delete(keyStr, bucket, idKey(publisher));
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
      const [keyStr, bucket] = next.value;
      examined += bucket.entries.size;
      removed += this.#purgeExpired(keyStr, bucket, now);
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
      for (const e of next.value.entries.values()) {
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
    let maxPublisherBytes = 0;
    for (const u of this.#perPublisher.values()) if (u.bytes > maxPublisherBytes) maxPublisherBytes = u.bytes;
    return {
      records: this.#records,
      keys: this.#byKey.size,
      bytes: this.#bytes,
      maxBytes: this.maxBytes,
      publishers: this.#perPublisher.size,
      maxPublisherBytes,
      tombstones: this.#tombstones.size,
      stored: this.#stored,
      expired: this.#expired,
      evicted: this.#evicted,
      tombstonesDropped: this.#tombstonesDropped,
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

  #countExpired(n: number): void {
    this.#expired += n;
    this.#events.expired?.(n);
  }

  #purgeExpired(keyStr: string, bucket: Bucket, now: number): number {
    let removed = 0;
    for (const [pubStr, e] of bucket.entries) {
      if (e.record.expires <= now) {
        this.#delete(keyStr, bucket, pubStr);
        removed++;
      }
    }
    if (removed > 0) this.#countExpired(removed);
    return removed;
  }

  #usage(pubStr: string): PublisherUsage {
    let u = this.#perPublisher.get(pubStr);
    if (!u) {
      u = { records: 0, bytes: 0, tombstones: new Set() };
      this.#perPublisher.set(pubStr, u);
    }
    return u;
  }

  #insert(keyStr: string, pubStr: string, entry: Entry): void {
    let bucket = this.#byKey.get(keyStr);
    if (!bucket) {
      bucket = { entries: new Map(), live: 0, bytes: 0 };
      this.#byKey.set(keyStr, bucket);
    }
    bucket.entries.set(pubStr, entry);
    const usage = this.#usage(pubStr);
    if (isTombstone(entry.record)) {
      const id = `${keyStr}/${pubStr}`;
      this.#tombstones.set(id, [keyStr, pubStr]);
      usage.tombstones.add(id);
      // Over a bound, the oldest tombstone (of this publisher, or of all) goes.
      if (usage.tombstones.size > this.maxTombstonesPerPublisher) this.#dropTombstone(usage.tombstones.values().next().value!);
      if (this.#tombstones.size > this.maxTombstones) this.#dropTombstone(this.#tombstones.keys().next().value!);
      return;
    }
    bucket.live++;
    bucket.bytes += entry.cost;
    usage.records++;
    usage.bytes += entry.cost;
    this.#records++;
    this.#bytes += entry.cost;
  }

  #dropTombstone(id: string): void {
    const [keyStr, pubStr] = this.#tombstones.get(id)!;
    this.#delete(keyStr, this.#byKey.get(keyStr)!, pubStr);
    this.#tombstonesDropped++;
  }

  #delete(keyStr: string, bucket: Bucket, pubStr: string): boolean {
    const entry = bucket.entries.get(pubStr);
    if (!entry) return false;
    bucket.entries.delete(pubStr);
    const usage = this.#perPublisher.get(pubStr)!;
    if (isTombstone(entry.record)) {
      const id = `${keyStr}/${pubStr}`;
      this.#tombstones.delete(id);
      usage.tombstones.delete(id);
    } else {
      bucket.live--;
      bucket.bytes -= entry.cost;
      usage.records--;
      usage.bytes -= entry.cost;
      this.#records--;
      this.#bytes -= entry.cost;
    }
    if (usage.records === 0 && usage.tombstones.size === 0) this.#perPublisher.delete(pubStr);
    if (bucket.entries.size === 0) this.#byKey.delete(keyStr);
    return true;
  }
}
