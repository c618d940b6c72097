/**
 * The DHT of one node: routing table, record store, lookups, request
 * handlers and the periodic work (re-announce, replication, bucket refresh).
 *
 * Transport-agnostic: everything network goes through `DhtNetwork`. The node
 * wires it up: it calls `onContact()` for every message received from a
 * peer (ID from the verified connection, port from the peer's HELLO) and
 * registers the DHT's request handlers with its messenger (`serve()`).
 */
import type { Identity } from '../identity/identity.js';
import type { PeerAddress } from '../transport/types.js';
import { ConfigError, RemoteError, StoppedError, TimeoutError } from '../util/errors.js';
import { messageName } from '../wire/messages.js';
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import type { Contact } from './contact.js';
import { DhtRemoteError, NotStoredError, StoreRefusedError, type StoreRefusalReason } from './errors.js';
import { backoffDelay, dialBootstrap } from './join.js';
import { storeAt, type StoreAttempt } from './store-client.js';
import { registerHandlers, type DhtHandlerRegistry, type HandlerContext } from './handlers/index.js';
import { compareDistance, idKey, isId } from './id.js';
import { lookup, type LookupKind, type LookupPeers, type LookupResult } from './lookup.js';
import { PING, PONG, type DhtMessage } from './messages.js';
import type { DhtMetrics, DhtStats } from './metrics.js';
import { DhtCounters } from './counters.js';
import { silentLogger, type DhtLogger, type DhtNetwork } from './network.js';
import { OwnRecords } from './own-records.js';
import { verifyRecord, type DhtRecord } from './record.js';
import { RecordStore, SELF_ORIGIN } from './record-store.js';
import { nodeIdFromPublicKey, toHex } from '../identity/identity.js';
import { RoutingTable } from './routing-table.js';
import { resolveDhtOptions, type DhtInit, type DhtOptions } from './options.js';

export type { DhtInit, DhtOptions } from './options.js';

export interface DhtComponents {
  identity: Identity;
  network: DhtNetwork;
  clock?: Clock;
  logger?: DhtLogger;
  metrics?: DhtMetrics;
  /** The failure detection's view (node ID in hex): lookups do not ask contacts of nodes it holds down. */
  isDown?: (nodeIdHex: string) => boolean;
}

export interface PutResult {
  record: DhtRecord;
  /** Peers that accepted the STORE. */
  replicas: number;
  /** Whether we keep a copy (we are among the k closest to the key). */
  storedLocally: boolean;
  /** Peers that refused it, by reason, or did not answer ('failed'). */
  refusals: Partial<Record<StoreRefusalReason | 'failed', number>>;
}

/** Nodes (this one included) that accepted the record of a put. */
export function accepted(r: PutResult): number {
  return r.replicas + (r.storedLocally ? 1 : 0);
}

/**
 * Whether a put took effect: at least one node accepted the record and at
 * least as many of the nodes that answered accepted it as refused it.
 * Nodes that did not answer count neither way (they are down; the record is
 * re-announced to whoever replaces them). A lone node storing its own record
 * has taken it; records refused by most of the k closest nodes are not
 * findable reliably and the put fails.
 */
export function stored(r: PutResult): boolean {
  let refused = 0;
  for (const [reason, n] of Object.entries(r.refusals)) if (reason !== 'failed') refused += n;
  const ok = accepted(r);
  return ok >= 1 && ok >= refused;
}

export interface BootstrapResult {
  /** Bootstrap addresses that answered. */
  reached: number;
  /** True when none answered and retries continue in the background. */
  retrying: boolean;
  routingTableSize: number;
}

export class Dht {
  readonly id: Uint8Array;
  readonly table: RoutingTable;
  readonly store: RecordStore;
  /** The options in force, defaults applied. */
  readonly options: DhtOptions;

  readonly #network: DhtNetwork;
  readonly #clock: Clock;
  readonly #log: DhtLogger;
  readonly #metrics: DhtMetrics;
  readonly #own: OwnRecords;
  /** Contacts that accepted the last STORE of each of our live records. */
  readonly #holders = new Map<string, Contact[]>();
  readonly #ctx: HandlerContext;
  readonly #peers: LookupPeers;
  readonly #timers = new Set<NodeJS.Timeout>();
  #republishTimer: NodeJS.Timeout | undefined;
  #started = false;
  #stopped = false;
  #replicating = false;
  #refreshing: Promise<number> | undefined;
  readonly #counters: DhtCounters;

  constructor(components: DhtComponents, init: DhtInit = {}) {
    this.id = components.identity.nodeId;
    this.#network = components.network;
    this.#clock = components.clock ?? systemClock;
    this.#log = components.logger ?? silentLogger;
    this.#metrics = components.metrics ?? {};
    this.#counters = new DhtCounters(this.#metrics);
    this.options = resolveDhtOptions(init);
    const o = this.options;

    const metrics = this.#metrics;
    this.table = new RoutingTable(
      { localId: this.id, clock: this.#clock, ping: (c) => this.ping(c) },
      { ...init.routingTable, k: o.k },
    );
    this.store = new RecordStore(
      {
        clock: this.#clock,
        events: {
          stored: () => metrics.recordStored?.(),
          expired: (n) => metrics.recordsExpired?.(n),
          refused: (reason) => metrics.storeRefused?.(reason),
        },
        isPresent: (pk) => this.#network.isConnected?.(nodeIdFromPublicKey(pk)) ?? false,
      },
      init.recordStore,
    );
    this.#own = new OwnRecords(components.identity, this.#clock, o.republishMarginMs);
    this.#ctx = {
      table: this.table,
      store: this.store,
      k: o.k,
      maxValueResponseBytes: o.maxValueResponseBytes,
    };
    this.#peers = {
      selfId: this.id,
      request: (c, m, t) => this.#request(c, m, t),
      onResponse: (c) => this.table.add(c),
      onFailure: (c) => this.table.markFailed(c.id),
      ...(components.isDown && { isDown: (id: Uint8Array) => components.isDown!(toHex(id)) }),
    };
  }

  /** Starts the background work: sweep, re-announce, replication, bucket refresh. All timers are unref'd. */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.store.start();
    if (this.options.refreshIntervalMs > 0) {
      this.#every(Math.max(1000, this.options.refreshIntervalMs / 6), () => void this.refresh().catch((e) => this.#warn('bucket refresh', e)));
    }
    if (this.options.replicationIntervalMs > 0) {
      this.#every(this.options.replicationIntervalMs, () => void this.replicate().catch((e) => this.#warn('replication', e)));
    }
    this.#scheduleRepublish();
  }

  /** Clears every timer. Lookups in progress end by their deadline; records are not withdrawn (see withdraw()). */
  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    clearTimeout(this.#republishTimer);
    this.store.stop();
  }

  /** A message arrived from `contact` (ID from the verified connection, port from its HELLO; 0 = client, ignored). */
  onContact(contact: Contact): void {
    this.table.add(contact);
  }

  /**
   * Registers the handlers of the DHT's requests (FIND_NODE, FIND_VALUE,
   * STORE) with `registry`, each directly: the node's messenger (see
   * `serveDht` in the session layer) or an in-process network in tests.
   */
  serve(registry: DhtHandlerRegistry): void {
    registerHandlers(registry, this.#ctx, (name) => this.#counters.received(name));
  }

  /**
   * Joins the mesh through `addresses`: dials them, looks up our own ID, then
   * refreshes every bucket up to our closest neighbour so the table holds
   * contacts at every distance. No address: we are the first node of a new
   * mesh. When none answers, this warns and keeps retrying in the background
   * with exponential backoff until one answers or stop() is called.
   *
   * `refreshBuckets: false` skips the bucket refresh (about log2(N) lookups):
   * a cheaper join whose far buckets then fill from incoming traffic and
   * the periodic refresh (useful to simulate very large meshes quickly).
   */
  bootstrap(addresses: readonly PeerAddress[], options: { refreshBuckets?: boolean } = {}): Promise<BootstrapResult> {
    return this.#bootstrap(addresses, options.refreshBuckets ?? true, 0);
  }

  async #bootstrap(addresses: readonly PeerAddress[], refreshBuckets: boolean, attempt: number): Promise<BootstrapResult> {
    if (addresses.length === 0 || this.#stopped) return { reached: 0, retrying: false, routingTableSize: this.table.size };
    const { reached, unreachable } = await dialBootstrap(
      { selfId: this.id, network: this.#network, table: this.table, log: this.#log, connectTimeoutMs: this.options.connectTimeoutMs },
      addresses,
    );
    if (reached === 0 && unreachable > 0) {
      const delay = backoffDelay(attempt, this.options.bootstrapRetryMinMs, this.options.bootstrapRetryMaxMs);
      this.#log.warn(`no bootstrap node reachable; retrying in ${Math.round(delay / 1000)} s (check the addresses and that those nodes run)`);
      this.#after(delay, () => void this.#bootstrap(addresses, refreshBuckets, attempt + 1).catch((e) => this.#warn('bootstrap', e)));
      return { reached, retrying: true, routingTableSize: this.table.size };
    }
    if (reached === 0) return { reached, retrying: false, routingTableSize: this.table.size };
    await this.findNode(this.id);
    if (refreshBuckets) await this.refresh({ force: true });
    return { reached, retrying: false, routingTableSize: this.table.size };
  }

  /** The k closest nodes to `target` that answered, closest first, with the lookup's figures. */
  findNode(target: Uint8Array): Promise<LookupResult> {
    return this.#lookup('node', target);
  }

  /**
   * The live records under `key`, merged by publisher (highest seq wins) from
   * our own store and from up to `valuePeers` holders in the network.
   */
  findValue(key: Uint8Array): Promise<LookupResult> {
    return this.#lookup('value', key, this.store.get(key));
  }

  /**
   * Signs `value` under `key` and stores it on the k closest nodes to the key,
   * and locally when we are one of them. Re-announced before expiry until
   * withdraw(key). A new put() for the same key replaces our previous value.
   *
   * Resolves only when enough nodes accepted the record (see `stored()`);
   * otherwise rejects with NotStoredError naming the refusals. The record
   * stays ours and is re-announced early (5 s, 10 s, …) either way: a full
   * store may have room later; withdraw(key) gives up.
   */
  async put(key: Uint8Array, value: Uint8Array, options: { ttlMs?: number } = {}): Promise<PutResult> {
    if (this.#stopped) throw StoppedError.of('the DHT');
    if (!isId(key)) throw new TypeError('a DHT key is 32 bytes; derive it with dhtKey(namespace, name)');
    if (value.length === 0) throw new TypeError('an empty value is reserved for withdrawals; use withdraw(key)');
    if (value.length > this.store.maxRecordSize) {
      throw new StoreRefusedError('too_large', `${value.length} bytes > maxRecordSize ${this.store.maxRecordSize}`);
    }
    const ttlMs = options.ttlMs ?? this.options.defaultTtlMs;
    if (!(ttlMs >= 1000) || ttlMs > this.store.maxTtlMs) {
      throw new ConfigError(`record TTL must be between 1 s and ${this.store.maxTtlMs} ms, got ${ttlMs}`);
    }
    const record = this.#own.publish(key, value, ttlMs);
    this.#scheduleRepublish();
    const result = await this.#publish(record);
    if (!stored(result)) throw new NotStoredError('the record', accepted(result), result.refusals);
    return result;
  }

  /**
   * Stops re-announcing our record under `key` and publishes a tombstone
   * that replaces it on the k closest nodes, so lookups stop returning it at
   * once instead of after its TTL. Undefined if we publish nothing there.
   */
  async withdraw(key: Uint8Array): Promise<PutResult | undefined> {
    const tombstone = this.#own.withdraw(key);
    if (!tombstone) return undefined;
    this.#scheduleRepublish();
    // The nodes that accepted our last STORE get the tombstone first, with no
    // lookup in between: a clean stop then withdraws within one round trip
    // even when the lookup would have to wait out dead contacts.
    const holders = this.#holders.get(idKey(key));
    this.#holders.delete(idKey(key));
    if (holders) {
      this.#storeLocally(tombstone);
      const outcomes = await Promise.all(holders.map((c) => this.#storeAt(c, tombstone)));
      return this.#publish(tombstone, new Map(holders.map((c, i) => [idKey(c.id), outcomes[i]!])));
    }
    return this.#publish(tombstone);
  }

  /** Withdraws every record we publish (call before stop() on a clean shutdown). */
  async withdrawAll(): Promise<void> {
    await Promise.all(this.#own.keys().map((k) => this.withdraw(k)));
  }

  /** PINGs a contact; true when it answers in time. */
  async ping(contact: Contact): Promise<boolean> {
    try {
      const res = await this.#request(contact, { t: PING.type }, this.options.requestTimeoutMs);
      return res.t === PONG.type;
    } catch {
      return false;
    }
  }

  /**
   * Refreshes buckets that had no lookup for refreshIntervalMs (with `force`:
   * every bucket not yet full) by looking up a random ID in each. Runs by timer; one
   * refresh at a time. Returns the number of buckets refreshed.
   */
  refresh(options: { force?: boolean } = {}): Promise<number> {
    if (this.#refreshing) return this.#refreshing;
    const buckets = options.force ? this.table.staleBuckets(0, { skipFull: true }) : this.table.staleBuckets(this.options.refreshIntervalMs);
    const run = Promise.all(buckets.map((i) => this.findNode(this.table.randomIdInBucket(i)))).then(() => buckets.length);
    this.#refreshing = run.finally(() => (this.#refreshing = undefined));
    return this.#refreshing;
  }

  /**
   * One replication tick: up to replicationBatch stored records that nobody
   * re-sent to us during the last interval are sent to the k closest
   * contacts we know for their key. A record re-sent to us counts as
   * replicated, so usually one holder per interval does the work.
   */
  async replicate(): Promise<number> {
    if (this.#replicating) return 0;
    this.#replicating = true;
    try {
      const records = this.store.takeForReplication(this.options.replicationBatch, this.options.replicationIntervalMs, this.options.requestTimeoutMs);
      for (const record of records) {
        if (this.#stopped) break;
        await Promise.all(this.table.closest(record.key, this.options.k).map((c) => this.#storeAt(c, record)));
      }
      return records.length;
    } finally {
      this.#replicating = false;
    }
  }

  /** Re-announces the own records that are due. Runs by timer. */
  async republish(): Promise<number> {
    const due = this.#own.takeDue();
    this.#scheduleRepublish();
    await Promise.all(due.map((r) => this.#publish(r).catch((e) => this.#warn('re-announce', e))));
    return due.length;
  }

  stats(): DhtStats {
    const s = this.store.stats();
    return {
      routingTableSize: this.table.size,
      evictions: this.table.evictions,
      records: s.records,
      maxRecords: this.store.maxRecords,
      keys: s.keys,
      bytes: s.bytes,
      maxBytes: s.maxBytes,
      maxPublisherBytes: s.maxPublisherBytes,
      tombstones: s.tombstones,
      recordsEvicted: s.evicted + s.tombstonesDropped,
      ownRecords: this.#own.size,
      recordsStored: s.stored,
      recordsExpired: s.expired,
      storesRefused: s.refused,
      ...this.#counters.snapshot(),
    };
  }

  async #lookup(kind: LookupKind, target: Uint8Array, localRecords?: DhtRecord[]): Promise<LookupResult> {
    if (!isId(target)) throw new TypeError('a DHT lookup target is 32 bytes');
    this.table.touch(target);
    const result = await lookup(this.#peers, {
      kind,
      target,
      seeds: this.table.closest(target, this.options.k),
      k: this.options.k,
      alpha: this.options.alpha,
      requestTimeoutMs: this.options.requestTimeoutMs,
      deadlineMs: this.options.lookupDeadlineMs,
      valuePeers: this.options.valuePeers,
      acceptRecord: (r) => this.#acceptRecord(r),
      localRecords,
    });
    this.#counters.lookup(result.stats);
    return result;
  }

  #acceptRecord(r: DhtRecord): boolean {
    const now = this.#clock.now();
    return r.expires > now && r.expires <= now + this.store.maxTtlMs + this.store.maxClockSkewMs && verifyRecord(r);
  }

  /** Our own store may refuse a record like any other node's (bounds); that is an answer here, not an error. */
  #storeLocally(record: DhtRecord): StoreAttempt {
    try {
      this.store.put(record, SELF_ORIGIN);
      return 'ok';
    } catch (err) {
      if (!(err instanceof StoreRefusedError)) throw err;
      return err.reason;
    }
  }

  /** Stores `record` on the k closest nodes of its key; `done` holds outcomes of STOREs already sent, not repeated. */
  async #publish(record: DhtRecord, done: ReadonlyMap<string, StoreAttempt> = new Map()): Promise<PutResult> {
    const { closest } = await this.findNode(record.key);
    const last = closest[this.options.k - 1];
    const local = !last || compareDistance(this.id, last.id, record.key) < 0 ? this.#storeLocally(record) : undefined;
    const outcomes = await Promise.all(closest.map((c) => done.get(idKey(c.id)) ?? this.#storeAt(c, record)));
    // Remember who holds our live records (bounded: one list of ≤ k per own record).
    if (record.value.length > 0 && this.#own.has(record.key)) {
      const holders = closest.filter((_, i) => outcomes[i] === 'ok');
      this.#holders.set(idKey(record.key), holders);
      if (holders.length < this.options.k) {
        this.#own.underReplicated(record.key);
        this.#scheduleRepublish();
      } else {
        this.#own.wellReplicated(record.key);
      }
    }
    const result: PutResult = { record, replicas: 0, storedLocally: local === 'ok', refusals: {} };
    if (local !== undefined && local !== 'ok') result.refusals[local] = 1;
    for (const o of outcomes) {
      if (o === 'ok') result.replicas++;
      else result.refusals[o] = (result.refusals[o] ?? 0) + 1;
    }
    return result;
  }

  #storeAt(contact: Contact, record: DhtRecord): Promise<StoreAttempt> {
    return storeAt(this.#request.bind(this), contact, record, this.options.requestTimeoutMs);
  }

  /** Every request goes through here: counted by type; an ERROR answer (a RemoteError) becomes a DhtRemoteError. */
  async #request(contact: Contact, msg: DhtMessage, timeoutMs: number): Promise<DhtMessage> {
    const name = messageName(msg.t);
    this.#counters.sent(name);
    try {
      return await this.#network.request(contact, msg, timeoutMs);
    } catch (err) {
      if (err instanceof RemoteError && !(err instanceof DhtRemoteError)) {
        this.#counters.failure();
        throw new DhtRemoteError(err.code, `peer answered ${name} with ${err.code}: ${err.message}`);
      }
      if (err instanceof TimeoutError || (err as { code?: string })?.code === 'MACULA_ERR_TIMEOUT') {
        this.#counters.timeout(name);
      } else {
        this.#counters.failure();
      }
      throw err;
    }
  }

  #scheduleRepublish(): void {
    clearTimeout(this.#republishTimer);
    this.#republishTimer = undefined;
    if (!this.#started || this.#stopped) return;
    const at = this.#own.nextDueAt();
    if (at === undefined) return;
    this.#republishTimer = setTimeout(() => void this.republish(), Math.max(0, at - this.#clock.now()));
    this.#republishTimer.unref();
  }

  #every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.#timers.add(t);
  }

  #after(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.#timers.add(t);
  }

  #warn(what: string, err: unknown): void {
    this.#log.warn(`DHT ${what} failed: ${(err as Error)?.message ?? String(err)}`);
  }
}
