/**
 * Sends PUBLISH messages to subscriber nodes through a bounded WorkerPool:
 * one job per (publish, subscriber node), at most `concurrency` sends in
 * flight and `maxQueue` queued; a full queue makes the publisher wait, or
 * refuses at once with `noWait`.
 *
 * A send to a connected node is a job that ends when its message is queued
 * on the connection, or, once that connection's send queue is past its
 * high-water mark, when the write carrying it completes: so one write
 * carries every message queued while the previous one was in flight, and a
 * peer that does not keep up fills the slots and then the queue, making the
 * publisher wait. What must never happen is one bad node holding the pool's
 * slots while the others wait:
 * - a node without an open connection gets its messages held in a small
 *   per-node backlog (bounded, overflow dropped and counted) while it is
 *   dialed *outside* the pool, then sent in order; so a dead node costs a
 *   dial attempt, never pool slots;
 * - a failed send marks the node down in the shared failure detection
 *   (`src/liveness/`): its jobs end at once and count as skipped until it
 *   is up again (contact, or its backoff passed when nothing probes);
 * - a connection with sends in flight and no completion for `sendStallMs`
 *   (a peer that vanished without closing, so flow control blocks the
 *   writes) is closed, which fails those sends and marks the node down.
 *
 * Order per node is kept: jobs start in FIFO order, and while a node has a
 * backlog every newer message joins the backlog behind it.
 *
 * A send may carry a run of `n` messages (wire/run.ts): it is one job, one
 * write and one backlog entry, and every count (sent, skipped, dropped,
 * failed) counts its n messages.
 */
import { settleWithin } from '../util/time.js';
import { LRUCache } from 'lru-cache';
import type { Clock } from '../util/clock.js';
import type { PeerAddress } from '../transport/types.js';
import { Liveness, type LivenessView } from '../liveness/liveness.js';
import { StoppedError } from '../util/errors.js';
import { RingQueue, WorkerPool, type WorkerPoolStats } from '../util/worker-pool.js';
import type { OutboundMessage } from '../wire/framed-stream.js';

export interface FanoutTarget {
  address: PeerAddress;
  nodeId: string;
}

/** What the fan-out needs from the messenger (Messenger implements it). */
export interface FanoutMessenger {
  notify(target: FanoutTarget, msg: OutboundMessage): Promise<void>;
  /** When present, tells whether a node has an open connection (the connection pool). */
  readonly pool?: { connectionTo(nodeIdHex: string): FanoutConnection | undefined };
  /** When present, sends on a connection `pool` returned: no second lookup (and no promise of its own) per message. */
  notifyOn?(conn: FanoutConnection, msg: OutboundMessage): Promise<void>;
  /** When present, whether messages queued on `conn` pile up past its high-water mark (see #release). */
  congested?(conn: FanoutConnection): boolean;
}

/** An open connection as the fan-out sees it. */
export interface FanoutConnection {
  close(): void;
}

/** A subscriber node as the fan-out sees it; one object per node ID, shared by every cache entry. */
export class Peer {
  readonly nodeId: string;
  target: FanoutTarget;
  inFlight = 0;
  /** Sends completed; the stall check compares it between sweeps. */
  progress = 0;
  lastProgress = 0;
  stalledSweeps = 0;
  backlog: RingQueue<Held> | undefined;
  draining = false;
  onSent: () => void = () => undefined;
  onFailed: (err: unknown) => void = () => undefined;

  constructor(nodeId: string, address: PeerAddress) {
    this.nodeId = nodeId;
    this.target = { address, nodeId };
  }
}

/** A send held while its node is dialed: the message and how many it carries. */
interface Held {
  readonly msg: OutboundMessage;
  readonly n: number;
}

/** One message for one node; `failover` is called when it cannot go there (node down, send failed). */
export interface Send {
  peer: Peer;
  msg: OutboundMessage;
  failover?: (() => void) | undefined;
}

export interface FanoutComponents {
  messenger: FanoutMessenger;
  clock: Clock;
  /** Shared failure detection; without it a private one with the backoffs of FanoutInit. */
  liveness?: LivenessView;
  /** Told when a node goes down, so caches can forget it. */
  onPeerDown?: (peer: Peer) => void;
  /** Told of messages for a node dropped here (skipped while down, backlog full or dropped). */
  onDrop?: (peer: Peer, n: number) => void;
}

export interface FanoutInit {
  concurrency: number;
  maxQueue: number;
  nodeBacklog: number;
  downBackoffMs: number;
  maxDownBackoffMs: number;
  sendStallMs: number;
  maxPeers: number;
}

export interface FanoutStats extends WorkerPoolStats {
  /** Messages written (a run counts its messages). */
  sent: number;
  /** Messages whose send failed. */
  sendFailures: number;
  /** Messages not sent because their node was down (backoff after a failure). */
  skippedDown: number;
  /** Messages held while their node is dialed, now. */
  backlogged: number;
  /** Messages dropped because a node's backlog (or the total) was full, or the node failed with a backlog. */
  backlogDropped: number;
  /** Connections closed because their sends stalled. */
  stalls: number;
  peers: number;
  peersDown: number;
}

const CLOSE_WAIT_MS = 2_000;

export class Fanout {
  readonly pool: WorkerPool;
  readonly #messenger: FanoutMessenger;
  readonly #onPeerDown: ((peer: Peer) => void) | undefined;
  readonly #onDrop: ((peer: Peer, n: number) => void) | undefined;
  readonly #liveness: LivenessView;
  readonly #init: FanoutInit;
  readonly #peers: LRUCache<string, Peer>;
  #sweep: NodeJS.Timeout | undefined;
  #closed = false;
  #held = 0;
  #sent = 0;
  #sendFailures = 0;
  #skippedDown = 0;
  #backlogDropped = 0;
  #stalls = 0;

  constructor(components: FanoutComponents, init: FanoutInit) {
    this.#messenger = components.messenger;
    this.#onPeerDown = components.onPeerDown;
    this.#onDrop = components.onDrop;
    this.#liveness =
      components.liveness ?? new Liveness({ now: () => components.clock.now() }, { baseBackoffMs: Math.max(1, init.downBackoffMs), maxBackoffMs: Math.max(1, init.maxDownBackoffMs), maxTracked: init.maxPeers });
    this.#init = init;
    this.pool = new WorkerPool({}, { concurrency: init.concurrency, maxQueue: init.maxQueue, name: 'pub/sub fan-out' });
    this.#peers = new LRUCache({ max: init.maxPeers });
    if (components.messenger.pool !== undefined) {
      this.#sweep = setInterval(() => this.#checkStalls(), Math.max(50, init.sendStallMs / 2));
      this.#sweep.unref();
    }
  }

  /** The Peer of a node (created on first use). */
  peer(nodeId: string, address: PeerAddress): Peer {
    let p = this.#peers.get(nodeId);
    if (p === undefined) {
      p = new Peer(nodeId, address);
      const peer = p;
      p.onSent = () => this.#ok(peer);
      p.onFailed = (err) => this.#fail(peer, err);
      this.#peers.set(nodeId, p);
    } else if (p.target.address.host !== address.host || p.target.address.port !== address.port) {
      p.target = { address, nodeId };
    }
    return p;
  }

  /** Jobs the pool accepts right now without waiting. */
  room(): number {
    const pool = this.pool;
    if (pool.waiting > 0) return 0;
    const queued = pool.queued;
    return pool.maxQueue - queued + (queued === 0 ? Math.max(0, pool.concurrency - pool.running) : 0);
  }

  /**
   * Queues one send per peer of `msg`, which carries `n` messages (a run);
   * undefined when all were accepted at once, else a promise that resolves
   * once they are (backpressure).
   */
  submit(peers: readonly Peer[], msg: OutboundMessage, n = 1): Promise<void> | undefined {
    if (this.#closed) return Promise.reject(StoppedError.of('pub/sub fan-out'));
    let i = 0;
    for (; i < peers.length && this.room() > 0; i++) void this.pool.submit(this.#job(peers[i]!, msg, n));
    return i === peers.length ? undefined : this.#submitRest(peers, i, msg, n);
  }

  /** Queues one send per peer only if all fit now; false (nothing queued) otherwise. */
  trySubmitAll(peers: readonly Peer[], msg: OutboundMessage, n = 1): boolean {
    if (this.#closed) throw StoppedError.of('pub/sub fan-out');
    if (this.room() < peers.length) return false;
    for (const p of peers) void this.pool.submit(this.#job(p, msg, n));
    return true;
  }

  stats(): FanoutStats {
    let peersDown = 0;
    for (const id of this.#peers.keys()) if (this.#liveness.isDown(id)) peersDown++;
    return {
      ...this.pool.stats(),
      sent: this.#sent,
      sendFailures: this.#sendFailures,
      skippedDown: this.#skippedDown,
      backlogged: this.#held,
      backlogDropped: this.#backlogDropped,
      stalls: this.#stalls,
      peers: this.#peers.size,
      peersDown,
    };
  }

  /** Drops every backlog and lets the sends already accepted finish (waiting at most 2 s). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweep);
    for (const p of this.#peers.values()) this.#dropBacklog(p);
    await settleWithin(this.pool.close(), CLOSE_WAIT_MS);
  }

  /** Like submit, with a message (and a failover) of its own per node. */
  submitSends(sends: readonly Send[]): Promise<void> | undefined {
    if (this.#closed) return Promise.reject(StoppedError.of('pub/sub fan-out'));
    let i = 0;
    for (; i < sends.length && this.room() > 0; i++) void this.pool.submit(this.#sendJob(sends[i]!));
    if (i === sends.length) return undefined;
    return (async () => {
      for (let j = i; j < sends.length; j++) await this.pool.submit(this.#sendJob(sends[j]!));
    })();
  }

  /** Like trySubmitAll, for submitSends. */
  trySubmitSends(sends: readonly Send[]): boolean {
    if (this.#closed) throw StoppedError.of('pub/sub fan-out');
    if (this.room() < sends.length) return false;
    for (const s of sends) void this.pool.submit(this.#sendJob(s));
    return true;
  }

  #sendJob(s: Send): () => Promise<void> | undefined {
    if (s.failover === undefined) return this.#job(s.peer, s.msg, 1);
    const { peer, msg, failover } = s;
    return () => {
      if (this.#liveness.isDown(peer.nodeId)) {
        this.#skippedDown++;
        failover();
        return undefined;
      }
      const conn = this.#connectionOrHold(peer, msg, 1);
      if (conn === null) return undefined;
      peer.inFlight++;
      const sent = this.#notify(peer, conn, msg).then(peer.onSent, (err: unknown) => {
        peer.onFailed(err);
        failover();
      });
      return this.#release(conn, sent);
    };
  }

  async #submitRest(peers: readonly Peer[], from: number, msg: OutboundMessage, n: number): Promise<void> {
    for (let i = from; i < peers.length; i++) await this.pool.submit(this.#job(peers[i]!, msg, n));
  }

  #job(peer: Peer, msg: OutboundMessage, n: number): () => Promise<void> | undefined {
    return () => this.#send(peer, msg, n);
  }

  #send(peer: Peer, msg: OutboundMessage, n: number): Promise<void> | undefined {
    if (this.#liveness.isDown(peer.nodeId)) {
      this.#skippedDown += n;
      this.#onDrop?.(peer, n);
      return undefined;
    }
    const conn = this.#connectionOrHold(peer, msg, n);
    if (conn === null) return undefined;
    peer.inFlight++;
    const sent = this.#notify(peer, conn, msg);
    return this.#release(conn, n === 1 ? sent.then(peer.onSent, peer.onFailed) : sent.then(() => this.#ok(peer, n), (err: unknown) => this.#fail(peer, err, n)));
  }

  /**
   * What the pool slot of a send waits for. A message queued on a connection
   * whose send queue is below its high-water mark frees the slot at once, so
   * one write carries every message queued while the previous write was in
   * flight (holding the slot until the write completed capped a write at
   * `concurrency` messages). Past the mark the slot is held until the write
   * completes: a slow or stuck peer fills the slots, then the pool's queue,
   * and then the publisher waits, so memory stays bounded by the mark per
   * connection plus the queue.
   */
  #release(conn: FanoutConnection | undefined, sent: Promise<void>): Promise<void> | undefined {
    const congested = this.#messenger.congested;
    return conn === undefined || congested === undefined || congested.call(this.#messenger, conn) ? sent : undefined;
  }

  /**
   * The node's open connection (undefined without a pool: the messenger
   * finds it); null when the message joined the node's backlog instead
   * (no open connection, or a backlog already).
   */
  #connectionOrHold(peer: Peer, msg: OutboundMessage, n: number): FanoutConnection | undefined | null {
    const pool = this.#messenger.pool;
    if (peer.backlog === undefined) {
      if (pool === undefined) return undefined;
      const conn = pool.connectionTo(peer.nodeId);
      if (conn !== undefined) return conn;
    }
    this.#hold(peer, msg, n);
    return null;
  }

  /** The connection is known: sent on it directly, without the messenger's lookup by node ID (one of the per-publish costs in the profile). */
  #notify(peer: Peer, conn: FanoutConnection | undefined, msg: OutboundMessage): Promise<void> {
    const m = this.#messenger;
    if (conn === undefined || m.notifyOn === undefined) return m.notify(peer.target, msg);
    try {
      return m.notifyOn(conn, msg);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #ok(peer: Peer, n = 1): void {
    peer.inFlight--;
    peer.progress++;
    this.#sent += n;
  }

  #fail(peer: Peer, err: unknown, n = 1): void {
    peer.inFlight--;
    this.#failed(peer, err, n);
  }

  #failed(peer: Peer, _err: unknown, n: number): void {
    this.#sendFailures += n;
    // One outage fails every send in flight to the node: it is reported once.
    if (this.#liveness.isDown(peer.nodeId)) return;
    this.#liveness.down(peer.nodeId, 'send_failed', peer.target.address);
    this.#dropBacklog(peer);
    this.#onPeerDown?.(peer);
  }

  #hold(peer: Peer, msg: OutboundMessage, n: number): void {
    if (this.#closed) return;
    peer.backlog ??= new RingQueue<Held>();
    // The total bound keeps many unreachable nodes from adding up to unbounded memory.
    if (peer.backlog.size >= this.#init.nodeBacklog || this.#held >= this.#init.maxQueue) {
      this.#backlogDropped += n;
      this.#onDrop?.(peer, n);
      return;
    }
    peer.backlog.push({ msg, n });
    this.#held += n;
    if (!peer.draining) void this.#drain(peer);
  }

  /** Sends a node's backlog in order: the first notify dials, the others wait on that same dial. */
  async #drain(peer: Peer): Promise<void> {
    peer.draining = true;
    try {
      for (;;) {
        const backlog = peer.backlog;
        if (backlog === undefined) return;
        if (backlog.size === 0 || this.#closed) {
          this.#dropBacklog(peer);
          return;
        }
        const batch = backlog.drainAll();
        for (const h of batch) this.#held -= h.n;
        peer.inFlight += batch.length;
        const results = await Promise.allSettled(batch.map((h) => this.#messenger.notify(peer.target, h.msg)));
        peer.inFlight -= batch.length;
        for (let i = 0; i < results.length; i++) {
          const r = results[i]!;
          if (r.status === 'fulfilled') {
            peer.progress++;
            this.#sent += batch[i]!.n;
          } else {
            this.#failed(peer, r.reason, batch[i]!.n);
          }
        }
      }
    } finally {
      peer.draining = false;
    }
  }

  #dropBacklog(peer: Peer): void {
    const backlog = peer.backlog;
    peer.backlog = undefined;
    if (backlog === undefined || backlog.size === 0) return;
    let n = 0;
    for (const h of backlog.drainAll()) n += h.n;
    this.#held -= n;
    this.#backlogDropped += n;
    this.#onDrop?.(peer, n);
  }

  #checkStalls(): void {
    const pool = this.#messenger.pool;
    if (pool === undefined) return;
    // Sweeps run every sendStallMs / 2: three quiet ones in a row span at least sendStallMs.
    const sweepsNeeded = 3;
    for (const p of this.#peers.values()) {
      if (p.inFlight === 0 || p.progress !== p.lastProgress) {
        p.lastProgress = p.progress;
        p.stalledSweeps = 0;
        continue;
      }
      // A dial in progress is the backlog's business, bounded by the dial timeout.
      if (p.draining) continue;
      if (++p.stalledSweeps < sweepsNeeded) continue;
      p.stalledSweeps = 0;
      const conn = pool.connectionTo(p.nodeId);
      if (conn === undefined) continue;
      this.#stalls++;
      conn.close();
    }
  }
}
