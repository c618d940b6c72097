/**
 * The connection pool: at most one connection in use per remote node,
 * concurrent dials to one node share one attempt, a hard cap on open
 * connections with LRU eviction of idle ones, and a reaper that closes
 * connections unused for `idleTimeoutMs`.
 *
 * When two nodes dial each other at the same moment each ends up with two
 * connections; both keep a direct one over one through a relay, else the
 * one dialed by the node with the smaller ID (a rule both sides compute
 * alike), and retire the other after a grace
 * period, so requests already in flight on it can finish. An inbound
 * connection that rule prefers is put in use only once the peer has spoken
 * on it (confirm()): its dialer may close it right after the handshake (a
 * dial abandoned at its deadline, a reachability dial-back), and requests
 * sent on it meanwhile would fail although the connection in use is fine.
 * When the connection in use closes while another one to the node is open
 * (retiring or not yet confirmed), that one takes over: the node is not lost.
 */
import { toHex } from '../identity/identity.js';
import { LimitExceededError } from '../util/errors.js';
import { formatAddress, parseAddress, type Connection, type DialOptions, type PeerAddress, type Transport } from './types.js';
import { intOption, numberOption } from '../util/options.js';

export interface ConnectionPoolInit {
  /** Max open connections (inbound + outbound). Default 1000. */
  maxConnections?: number;
  /** A connection with no request for this long is closed by the reaper. Default 5 min. */
  idleTimeoutMs?: number;
  /** How often the reaper runs. Default 60 s. */
  reapIntervalMs?: number;
  /** Dial deadline. Default: the transport's handshake timeout. */
  dialTimeoutMs?: number;
  /** How long a duplicate connection lingers before it is closed. Default 5 s. */
  duplicateGraceMs?: number;
}

export const DEFAULT_MAX_CONNECTIONS = 1000;
export const DEFAULT_POOL_IDLE_TIMEOUT_MS = 5 * 60_000;
export const DEFAULT_REAP_INTERVAL_MS = 60_000;
/** When two nodes dial each other at once, the connection not kept is closed after this long. */
export const DEFAULT_DUPLICATE_GRACE_MS = 5000;

/** A bare pool's defaults (a node's maxConnections is its gateway's maxClients + MESH_CONNECTION_MARGIN). */
export const POOL_DEFAULTS = Object.freeze({
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  idleTimeoutMs: DEFAULT_POOL_IDLE_TIMEOUT_MS,
  reapIntervalMs: DEFAULT_REAP_INTERVAL_MS,
  duplicateGraceMs: DEFAULT_DUPLICATE_GRACE_MS,
});

export interface PoolStats {
  open: number;
  max: number;
  dialed: number;
  accepted: number;
  failedDials: number;
  evicted: number;
  reaped: number;
  refused: number;
  duplicates: number;
}

interface Entry {
  conn: Connection;
  lastUsed: number;
  busy: number;
  /** The address this connection was dialed at (outbound only). */
  addrKey?: string;
  /** Outbound, or the peer has spoken on it (confirm()): its dialer is not about to drop it. */
  heard: boolean;
}

export interface PoolComponents {
  transport: Transport;
  now?: () => number;
}

export class ConnectionPool {
  readonly maxConnections: number;
  readonly idleTimeoutMs: number;
  readonly reapIntervalMs: number;
  /** Called once for every connection the pool adopts (dialed or accepted). */
  onConnection: ((conn: Connection) => void) | undefined;
  /**
   * The connection in use for a node closed without the pool closing it (peer
   * gone, idle timeout, closed by a layer above); `idleMs` since it was last used.
   */
  onConnectionLost: ((nodeIdHex: string, address: PeerAddress | undefined, idleMs: number) => void) | undefined;
  /** A dial failed; `nodeIdHex` when the node was named or known at that address. */
  onDialFailed: ((address: PeerAddress, nodeIdHex: string | undefined) => void) | undefined;

  readonly #transport: Transport;
  readonly #now: () => number;
  readonly #localHex: string;
  readonly #dialTimeoutMs: number | undefined;
  readonly #graceMs: number;
  readonly #byNode = new Map<string, Entry>();
  readonly #entries = new Map<Connection, Entry>();
  readonly #dialing = new Map<string, Promise<Connection>>();
  readonly #addressToNode = new Map<string, string>();
  #reaper: NodeJS.Timeout | undefined;
  /** Duplicates being retired, with the timer that closes them after the grace. */
  readonly #retiring = new Map<Connection, NodeJS.Timeout>();
  /** Inbound duplicates kept aside until the peer speaks on them (confirm()). */
  readonly #standby = new Set<Entry>();
  #stats = { dialed: 0, accepted: 0, failedDials: 0, evicted: 0, reaped: 0, refused: 0, duplicates: 0 };

  constructor(components: PoolComponents, init: ConnectionPoolInit = {}) {
    this.#transport = components.transport;
    this.#now = components.now ?? Date.now;
    this.#localHex = toHex(components.transport.localNodeId);
    this.maxConnections = intOption('pool option maxConnections', init.maxConnections ?? DEFAULT_MAX_CONNECTIONS, 1);
    this.idleTimeoutMs = numberOption('pool option idleTimeoutMs', init.idleTimeoutMs ?? DEFAULT_POOL_IDLE_TIMEOUT_MS, 0, { exclusiveMin: true });
    this.reapIntervalMs = numberOption('pool option reapIntervalMs', init.reapIntervalMs ?? DEFAULT_REAP_INTERVAL_MS, 0, { exclusiveMin: true });
    this.#dialTimeoutMs = init.dialTimeoutMs === undefined ? undefined : numberOption('pool option dialTimeoutMs', init.dialTimeoutMs, 0, { exclusiveMin: true });
    this.#graceMs = numberOption('pool option duplicateGraceMs', init.duplicateGraceMs ?? DEFAULT_DUPLICATE_GRACE_MS, 0);
  }

  start(): void {
    this.#reaper ??= setInterval(() => this.reap(), this.reapIntervalMs);
    this.#reaper.unref();
  }

  stop(): void {
    if (this.#reaper) clearInterval(this.#reaper);
    this.#reaper = undefined;
    for (const timer of this.#retiring.values()) clearTimeout(timer);
    this.#retiring.clear();
    this.#standby.clear();
    for (const entry of this.#entries.values()) entry.conn.close();
    this.#entries.clear();
    this.#byNode.clear();
    this.#addressToNode.clear();
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The connection in use for a node, if open. */
  connectionTo(nodeIdHex: string): Connection | undefined {
    const entry = this.#byNode.get(nodeIdHex);
    return entry && !entry.conn.isClosed ? entry.conn : undefined;
  }

  connections(): Connection[] {
    return [...this.#byNode.values()].map((e) => e.conn);
  }

  /**
   * Returns the open connection to the node (by ID if known, else by
   * address), dialing it if needed; concurrent calls share one dial.
   */
  async get(address: PeerAddress, nodeId?: Uint8Array | string, timeoutMs?: number): Promise<Connection> {
    const addrKey = formatAddress(address);
    const hex = nodeId === undefined ? this.#addressToNode.get(addrKey) : typeof nodeId === 'string' ? nodeId : toHex(nodeId);
    if (hex !== undefined) {
      const existing = this.connectionTo(hex);
      if (existing) return existing;
    }
    const pending = (hex !== undefined ? this.#dialing.get(hex) : undefined) ?? this.#dialing.get(addrKey);
    if (pending) {
      const conn = await pending;
      if (hex === undefined || conn.remoteNodeIdHex === hex) return conn;
    }
    const dial = this.#dial(address, addrKey, nodeId === undefined ? undefined : hex, timeoutMs, hex);
    const keys = hex !== undefined ? [addrKey, hex] : [addrKey];
    for (const k of keys) this.#dialing.set(k, dial);
    const forget = () => {
      for (const k of keys) if (this.#dialing.get(k) === dial) this.#dialing.delete(k);
    };
    dial.then(forget, forget);
    return dial;
  }

  async #dial(address: PeerAddress, addrKey: string, expectedHex: string | undefined, timeoutMs: number | undefined, knownHex: string | undefined): Promise<Connection> {
    if (this.#entries.size >= this.maxConnections && !this.#evictOne()) {
      this.#stats.refused++;
      throw new LimitExceededError('open connections', this.maxConnections, 'raise --max-connections or reduce the number of peers');
    }
    const options: DialOptions = {};
    if (expectedHex !== undefined) options.expectedNodeId = expectedHex;
    const deadline = timeoutMs ?? this.#dialTimeoutMs;
    if (deadline !== undefined) options.timeoutMs = deadline;
    let conn: Connection;
    try {
      conn = await this.#transport.dial(address, options);
    } catch (err) {
      this.#stats.failedDials++;
      this.onDialFailed?.(address, knownHex);
      throw err;
    }
    this.#stats.dialed++;
    const adopted = this.#adopt(conn);
    const entry = this.#entries.get(conn);
    if (entry && !conn.isClosed) {
      entry.addrKey = addrKey;
      this.#addressToNode.set(addrKey, conn.remoteNodeIdHex);
    }
    return adopted ?? this.connectionTo(conn.remoteNodeIdHex) ?? conn;
  }

  /** Registers an inbound connection; returns false (and closes it) when refused. */
  accept(conn: Connection): boolean {
    if (this.#entries.size >= this.maxConnections && !this.#evictOne()) {
      this.#stats.refused++;
      conn.close();
      return false;
    }
    this.#stats.accepted++;
    this.#adopt(conn);
    return true;
  }

  /** Returns the connection when it becomes the one in use for its node. */
  #adopt(conn: Connection): Connection | undefined {
    const entry: Entry = { conn, lastUsed: this.#now(), busy: 0, heard: conn.direction === 'outbound' };
    this.#entries.set(conn, entry);
    const hex = conn.remoteNodeIdHex;
    void conn.closed.then(() => {
      // Closes the pool makes itself (reaper, eviction, duplicates, stop) forget the entry first.
      const inUse = this.#byNode.get(hex)?.conn === conn;
      const entry = this.#entries.get(conn);
      this.#forget(conn);
      // An inbound connection the peer never spoke on says nothing about the peer (its dialer may have dropped it at once).
      if (inUse && entry && !this.#takeOver(entry) && entry.heard) {
        this.onConnectionLost?.(hex, entry.addrKey === undefined ? undefined : parseAddress(entry.addrKey), this.#now() - entry.lastUsed);
      }
    });
    const current = this.#byNode.get(hex);
    this.onConnection?.(conn);
    if (current && !current.conn.isClosed) {
      this.#stats.duplicates++;
      // Between a direct and a relayed connection the direct one is put in use at once.
      const alike = (conn.relayed === true) === (current.conn.relayed === true);
      if (this.#preferred(conn, current.conn) === conn) {
        if (alike && !entry.heard) {
          this.#standby.add(entry);
          return undefined;
        }
        this.#retire(current.conn);
      } else if (alike && entry.heard && !current.heard) {
        // The one in use is an inbound connection the peer has not spoken on yet: ours is used meanwhile.
        this.#standby.add(current);
      } else {
        this.#retire(conn);
        return undefined;
      }
    }
    this.#byNode.set(hex, entry);
    return conn;
  }

  /**
   * The peer spoke on `conn` (its HELLO, or its answer to ours): an inbound
   * duplicate kept aside is put in use now if the tie-break prefers it (the
   * one it replaces is retired), else retired.
   */
  confirm(conn: Connection): void {
    const entry = this.#entries.get(conn);
    if (entry === undefined || entry.heard) return;
    entry.heard = true;
    if (!this.#standby.delete(entry) || conn.isClosed) return;
    const hex = conn.remoteNodeIdHex;
    const current = this.#byNode.get(hex);
    if (current && !current.conn.isClosed) {
      if (this.#preferred(conn, current.conn) !== conn) return this.#retire(conn);
      this.#retire(current.conn);
    }
    this.#byNode.set(hex, entry);
  }

  /** Closes a duplicate after the grace, so requests in flight on it can finish. */
  #retire(conn: Connection): void {
    if (this.#retiring.has(conn)) return;
    const timer = setTimeout(() => {
      this.#retiring.delete(conn);
      conn.close();
    }, this.#graceMs);
    this.#retiring.set(conn, timer);
  }

  /** The connection in use for a node closed: another open one to it (retiring or on standby) takes over. */
  #takeOver(closed: Entry): boolean {
    const hex = closed.conn.remoteNodeIdHex;
    let next: Entry | undefined;
    const consider = (entry: Entry | undefined) => {
      if (entry === undefined || entry.conn.isClosed || entry.conn.remoteNodeIdHex !== hex) return;
      if (next === undefined || this.#preferred(entry.conn, next.conn) === entry.conn) next = entry;
    };
    for (const entry of this.#standby) consider(entry);
    for (const conn of this.#retiring.keys()) consider(this.#entries.get(conn));
    if (next === undefined) return false;
    clearTimeout(this.#retiring.get(next.conn));
    this.#retiring.delete(next.conn);
    this.#standby.delete(next);
    // Should it close too, the node is lost as the closed one would have made it.
    next.heard ||= closed.heard;
    next.lastUsed = Math.max(next.lastUsed, closed.lastUsed);
    this.#byNode.set(hex, next);
    return true;
  }

  /** Of two connections to one node, both sides keep the one dialed by the smaller node ID. */
  #preferred(a: Connection, b: Connection): Connection {
    // A direct connection replaces one through a relay (src/relay/), whoever dialed it.
    if ((a.relayed === true) !== (b.relayed === true)) return a.relayed === true ? b : a;
    const dialer = (c: Connection) => (c.direction === 'outbound' ? this.#localHex : c.remoteNodeIdHex);
    const da = dialer(a);
    const db = dialer(b);
    if (da === db) return b; // same dialer twice (two racing dials): keep the one already in use
    return da < db ? a : b;
  }

  #forget(conn: Connection): void {
    const entry = this.#entries.get(conn);
    if (entry?.addrKey !== undefined && this.#addressToNode.get(entry.addrKey) === conn.remoteNodeIdHex) {
      this.#addressToNode.delete(entry.addrKey);
    }
    this.#entries.delete(conn);
    if (entry !== undefined) this.#standby.delete(entry);
    const timer = this.#retiring.get(conn);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.#retiring.delete(conn);
    }
    const hex = conn.remoteNodeIdHex;
    if (this.#byNode.get(hex)?.conn === conn) this.#byNode.delete(hex);
  }

  /** Marks activity on a connection (for LRU and the idle reaper). */
  touch(conn: Connection): void {
    const entry = this.#entries.get(conn);
    if (entry) entry.lastUsed = this.#now();
  }

  /** A request is in flight on the connection: it is not idle, never evicted. */
  acquire(conn: Connection): void {
    const entry = this.#entries.get(conn);
    if (entry) {
      entry.busy++;
      entry.lastUsed = this.#now();
    }
  }

  release(conn: Connection): void {
    const entry = this.#entries.get(conn);
    if (entry && entry.busy > 0) entry.busy--;
  }

  /** Closes the least recently used idle connection; false if every one is busy. */
  #evictOne(): boolean {
    // O(open connections), but only when the pool is full: a full pool is
    // the rare path, and touch() on the hot path stays a field write.
    let oldest: Entry | undefined;
    for (const entry of this.#entries.values()) {
      if (entry.busy === 0 && (oldest === undefined || entry.lastUsed < oldest.lastUsed)) oldest = entry;
    }
    if (!oldest) return false;
    this.#stats.evicted++;
    this.#forget(oldest.conn);
    oldest.conn.close();
    return true;
  }

  /** Closes connections idle for longer than idleTimeoutMs; runs every reapIntervalMs. */
  reap(): number {
    const cutoff = this.#now() - this.idleTimeoutMs;
    let n = 0;
    for (const entry of [...this.#entries.values()]) {
      if (entry.busy === 0 && entry.lastUsed <= cutoff) {
        this.#forget(entry.conn);
        entry.conn.close();
        n++;
      }
    }
    this.#stats.reaped += n;
    return n;
  }

  stats(): PoolStats {
    return { open: this.#entries.size, max: this.maxConnections, ...this.#stats };
  }
}
