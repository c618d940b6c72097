/**
 * Failure detection shared by RPC provider selection and pub/sub fan-out:
 * one place that says whether a node is down.
 *
 * - `down(nodeId, reason, address?)`: a connection to the node was lost, a
 *   dial to it failed, a request timed out, a send failed. The node is down
 *   at once for everyone asking `isDown`. Repeated reports during one
 *   outage do not escalate anything.
 * - `suspect(nodeId, reason, address)`: a request went unanswered (a slow
 *   handler looks alike): the node is probed at once and down only if the
 *   probe fails too.
 * - `up(nodeId)`: any successful contact (a HELLO, a message from it, an
 *   answered probe) ends the outage at once.
 *
 * With a `probe` (a PING through the messenger) a down node stays down
 * until contact is made again: after a backoff (`baseBackoffMs`, doubling
 * up to `maxBackoffMs`, ±20 % jitter) the node is probed, never tried by
 * callers. A probe that fails waits the next, longer backoff. A node down
 * for longer than `forgetAfterMs` is no longer tracked nor probed: by then
 * its registrations and announcements have expired (300 s TTL).
 * Without a probe (unit tests of one component) the down state simply
 * ends when its backoff has passed, and the next failure doubles it.
 *
 * Bounded: at most `maxTracked` nodes (least recently reported dropped).
 */
import { LRUCache } from 'lru-cache';
import type { PeerAddress } from '../transport/types.js';
import { numberOption } from '../util/options.js';

export const DOWN_REASONS = ['connection_lost', 'dial_failed', 'request_failed', 'send_failed'] as const;
export type DownReason = (typeof DOWN_REASONS)[number];

export const DEFAULT_LIVENESS_BASE_BACKOFF_MS = 1_000;
export const DEFAULT_LIVENESS_MAX_BACKOFF_MS = 30_000;
export const DEFAULT_LIVENESS_PROBE_TIMEOUT_MS = 2_000;
export const DEFAULT_LIVENESS_FORGET_AFTER_MS = 600_000;
export const DEFAULT_LIVENESS_MAX_TRACKED = 10_000;

export const LIVENESS_DEFAULTS = Object.freeze({
  baseBackoffMs: DEFAULT_LIVENESS_BASE_BACKOFF_MS,
  maxBackoffMs: DEFAULT_LIVENESS_MAX_BACKOFF_MS,
  probeTimeoutMs: DEFAULT_LIVENESS_PROBE_TIMEOUT_MS,
  forgetAfterMs: DEFAULT_LIVENESS_FORGET_AFTER_MS,
  maxTracked: DEFAULT_LIVENESS_MAX_TRACKED,
});

export interface LivenessInit {
  /** First wait before a down node is probed (or, without a probe, tried again). Default 1000 ms. */
  baseBackoffMs?: number;
  /** Longest wait between probes. Default 30 000 ms. */
  maxBackoffMs?: number;
  /** A probe not answered within this counts as failed. Default 2000 ms. */
  probeTimeoutMs?: number;
  /** A node down this long is forgotten (no longer probed). Default 600 000 ms. */
  forgetAfterMs?: number;
  /** Most nodes tracked. Default 10 000. */
  maxTracked?: number;
}

export interface LivenessComponents {
  /** Contacts the node (resolves when it answered); without it, down states expire after their backoff. */
  probe?: (nodeId: string, address: PeerAddress, timeoutMs: number) => Promise<unknown>;
  now?: () => number;
}

/** What RPC selection and fan-out read and report. */
export interface LivenessView {
  isDown(nodeId: string): boolean;
  down(nodeId: string, reason: DownReason, address?: PeerAddress): void;
  /** A request went unanswered: probe the node now and mark it down only if the probe fails too. */
  suspect(nodeId: string, reason: DownReason, address: PeerAddress): void;
}

export type LivenessListener = (nodeId: string, up: boolean) => void;

export interface LivenessStats {
  /** Nodes down now. */
  down: number;
  tracked: number;
  maxTracked: number;
  /** Outages begun, by the reason of their first report. */
  markedDown: Record<DownReason, number>;
  /** Outages ended by contact. */
  markedUp: number;
  probes: number;
  probeFailures: number;
  /** Nodes dropped after forgetAfterMs down. */
  forgotten: number;
}

interface Entry {
  address: PeerAddress | undefined;
  since: number;
  downUntil: number;
  failures: number;
  timer: NodeJS.Timeout | undefined;
}

export class Liveness implements LivenessView {
  readonly baseBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly probeTimeoutMs: number;
  readonly forgetAfterMs: number;
  readonly maxTracked: number;
  readonly #probe: LivenessComponents['probe'];
  readonly #now: () => number;
  readonly #nodes: LRUCache<string, Entry>;
  readonly #listeners: LivenessListener[] = [];
  /** Nodes being probed after a suspicion (bounded by maxTracked). */
  readonly #checking = new Set<string>();
  readonly #markedDown = Object.fromEntries(DOWN_REASONS.map((r) => [r, 0])) as Record<DownReason, number>;
  #markedUp = 0;
  #probes = 0;
  #probeFailures = 0;
  #forgotten = 0;
  #closed = false;

  constructor(components: LivenessComponents = {}, init: LivenessInit = {}) {
    this.#probe = components.probe;
    this.#now = components.now ?? Date.now;
    this.baseBackoffMs = positive('baseBackoffMs', init.baseBackoffMs ?? DEFAULT_LIVENESS_BASE_BACKOFF_MS);
    this.maxBackoffMs = positive('maxBackoffMs', Math.max(this.baseBackoffMs, init.maxBackoffMs ?? DEFAULT_LIVENESS_MAX_BACKOFF_MS));
    this.probeTimeoutMs = positive('probeTimeoutMs', init.probeTimeoutMs ?? DEFAULT_LIVENESS_PROBE_TIMEOUT_MS);
    this.forgetAfterMs = positive('forgetAfterMs', init.forgetAfterMs ?? DEFAULT_LIVENESS_FORGET_AFTER_MS);
    this.maxTracked = positive('maxTracked', init.maxTracked ?? DEFAULT_LIVENESS_MAX_TRACKED);
    this.#nodes = new LRUCache({ max: this.maxTracked, dispose: (e) => clearTimeout(e.timer) });
  }

  /** Called with (nodeId, false) when an outage begins and (nodeId, true) when it ends by contact. */
  onChange(listener: LivenessListener): void {
    this.#listeners.push(listener);
  }

  isDown(nodeId: string): boolean {
    const e = this.#nodes.peek(nodeId);
    if (e === undefined) return false;
    return this.#probe !== undefined || e.downUntil > this.#now();
  }

  down(nodeId: string, reason: DownReason, address?: PeerAddress): void {
    if (this.#closed) return;
    let e = this.#nodes.get(nodeId);
    if (e !== undefined) {
      if (address !== undefined) e.address = address;
      // Reports during one outage (every send in flight fails alike) change nothing.
      if (this.isDown(nodeId)) return;
      e.failures++;
    } else {
      e = { address, since: this.#now(), downUntil: 0, failures: 1, timer: undefined };
      this.#nodes.set(nodeId, e);
    }
    e.downUntil = this.#now() + this.#backoff(e.failures);
    this.#markedDown[reason]++;
    if (this.#probe !== undefined) this.#schedule(nodeId, e);
    this.#emit(nodeId, false);
  }

  suspect(nodeId: string, reason: DownReason, address: PeerAddress): void {
    if (this.#closed || this.isDown(nodeId) || this.#checking.has(nodeId)) return;
    const probe = this.#probe;
    // A slow handler is not a dead node: only a node that does not answer a PING either is down.
    if (probe === undefined) return this.down(nodeId, reason, address);
    if (this.#checking.size >= this.maxTracked) return;
    this.#checking.add(nodeId);
    this.#probes++;
    probe(nodeId, address, this.probeTimeoutMs).then(
      () => {
        this.#checking.delete(nodeId);
        this.up(nodeId);
      },
      () => {
        this.#checking.delete(nodeId);
        this.#probeFailures++;
        this.down(nodeId, reason, address);
      },
    );
  }

  /** Contact with the node succeeded: it is up. */
  up(nodeId: string): void {
    const e = this.#nodes.peek(nodeId);
    if (e === undefined) return;
    const wasDown = this.isDown(nodeId);
    // Without a probe an expired entry only remembers the failure count: contact resets it.
    this.#nodes.delete(nodeId);
    if (!wasDown) return;
    this.#markedUp++;
    this.#emit(nodeId, true);
  }

  stats(): LivenessStats {
    let down = 0;
    for (const id of this.#nodes.keys()) if (this.isDown(id)) down++;
    return {
      down,
      tracked: this.#nodes.size,
      maxTracked: this.maxTracked,
      markedDown: { ...this.#markedDown },
      markedUp: this.#markedUp,
      probes: this.#probes,
      probeFailures: this.#probeFailures,
      forgotten: this.#forgotten,
    };
  }

  close(): void {
    this.#closed = true;
    this.#nodes.clear();
  }

  #backoff(failures: number): number {
    const ms = Math.min(this.maxBackoffMs, this.baseBackoffMs * 2 ** Math.min(failures - 1, 20));
    return Math.round(ms * (0.8 + 0.4 * Math.random()));
  }

  #schedule(nodeId: string, e: Entry): void {
    clearTimeout(e.timer);
    e.timer = setTimeout(() => void this.#probeNow(nodeId, e), Math.max(0, e.downUntil - this.#now()));
    e.timer.unref();
  }

  async #probeNow(nodeId: string, e: Entry): Promise<void> {
    e.timer = undefined;
    if (this.#closed || this.#nodes.peek(nodeId) !== e) return;
    if (this.#now() - e.since >= this.forgetAfterMs) {
      this.#forgotten++;
      this.#nodes.delete(nodeId);
      return;
    }
    if (e.address === undefined) {
      // Nowhere to probe: wait for the node to make contact (or another report naming its address).
      e.failures++;
      e.downUntil = this.#now() + this.#backoff(e.failures);
      this.#schedule(nodeId, e);
      return;
    }
    this.#probes++;
    try {
      await this.#probe!(nodeId, e.address, this.probeTimeoutMs);
      this.up(nodeId);
    } catch {
      this.#probeFailures++;
      if (this.#closed || this.#nodes.peek(nodeId) !== e) return;
      e.failures++;
      e.downUntil = this.#now() + this.#backoff(e.failures);
      this.#schedule(nodeId, e);
    }
  }

  #emit(nodeId: string, up: boolean): void {
    for (const l of this.#listeners) {
      try {
        l(nodeId, up);
      } catch {
        // a cache that fails to update must not stop the others
      }
    }
  }
}

function positive(name: string, v: number): number {
  return numberOption(`liveness ${name}`, v, 0, { exclusiveMin: true });
}
