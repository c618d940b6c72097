/**
 * Relaying for nodes behind a NAT. A reachable node keeps reservations
 * (RELAY_RESERVE) for private nodes, over the connection each keeps open to
 * it; a dialer opens a stream with RELAY_CONNECT, the relay opens a stream
 * to the reserved node with RELAY_INCOMING and forwards RELAY_DATA both
 * ways without reading it (the ends' Noise messages).
 *
 * Every resource is bounded: reservations, circuits in total and per
 * reserved node, and per circuit its bytes per second (the forwarder waits:
 * backpressure, not loss), its bytes and its duration (the circuit is then
 * closed; the ends reconnect if they still need to). Refusals answer with a
 * MACULA_ERR_RELAY_* code; refusals and closes are counted by reason.
 */
import { toHex } from '../identity/identity.js';
import type { Messenger } from '../session/messenger.js';
import type { PeerInfo } from '../session/peer-session.js';
import type { Connection } from '../transport/types.js';
import type { FramedStream } from '../wire/framed-stream.js';
import type { Message } from '../wire/messages.js';
import { intOption, numberOption } from '../util/options.js';
import { RelayError, relayOff } from './errors.js';
import { RELAY_CONNECT, RELAY_DATA, RELAY_INCOMING, RELAY_RESERVE, RELAY_RESERVED, RELAY_STATUS } from './messages.js';

export interface RelayServerInit {
  /** Nodes this relay keeps reservations for. Default 128. */
  maxReservations?: number;
  /** A reservation lasts this long unless renewed (clients renew at half). Default 2 min. */
  reservationTtlMs?: number;
  /** Circuits open at once, in total. Default 256. */
  maxCircuits?: number;
  /** Circuits open at once to one reserved node. Default 32. */
  maxCircuitsPerNode?: number;
  /** Bytes per second one circuit may forward (both directions together). Default 4 MiB/s. */
  circuitBytesPerSecond?: number;
  /** Bytes one circuit may forward before it is closed. Default 1 GiB. */
  circuitMaxBytes?: number;
  /** How long a circuit may stay open. Default 1 h. */
  circuitMaxDurationMs?: number;
}

export const DEFAULT_MAX_RESERVATIONS = 128;
export const DEFAULT_RESERVATION_TTL_MS = 120_000;
export const DEFAULT_MAX_CIRCUITS = 256;
export const DEFAULT_MAX_CIRCUITS_PER_NODE = 32;
export const DEFAULT_CIRCUIT_BYTES_PER_SECOND = 4 * 1024 * 1024;
export const DEFAULT_CIRCUIT_MAX_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_CIRCUIT_MAX_DURATION_MS = 60 * 60_000;

/** What a relay bounds by default (the node's `relay.limits`). */
export const RELAY_SERVER_DEFAULTS = Object.freeze({
  maxReservations: DEFAULT_MAX_RESERVATIONS,
  reservationTtlMs: DEFAULT_RESERVATION_TTL_MS,
  maxCircuits: DEFAULT_MAX_CIRCUITS,
  maxCircuitsPerNode: DEFAULT_MAX_CIRCUITS_PER_NODE,
  circuitBytesPerSecond: DEFAULT_CIRCUIT_BYTES_PER_SECOND,
  circuitMaxBytes: DEFAULT_CIRCUIT_MAX_BYTES,
  circuitMaxDurationMs: DEFAULT_CIRCUIT_MAX_DURATION_MS,
});

export type RelayRefusalReason = 'off' | 'reservations_full' | 'circuits_full' | 'no_reservation' | 'target_unreachable';
export type CircuitEndReason = 'closed' | 'bytes_limit' | 'duration_limit' | 'protocol';

export interface RelayServerStats {
  /** Whether this node relays now (--relay, or found public with the default). */
  enabled: boolean;
  reservations: number;
  maxReservations: number;
  circuits: number;
  maxCircuits: number;
  circuitsOpened: number;
  reservationsGranted: number;
  bytesForwarded: number;
  refused: Record<RelayRefusalReason, number>;
  ended: Record<CircuitEndReason, number>;
}

export interface RelayServerComponents {
  messenger: Messenger;
  /** Whether to relay now. */
  enabled(): boolean;
}

interface Reservation {
  conn: Connection;
  expires: number;
  circuits: number;
}

export class RelayServer {
  readonly maxReservations: number;
  readonly reservationTtlMs: number;
  readonly maxCircuits: number;
  readonly maxCircuitsPerNode: number;
  readonly circuitBytesPerSecond: number;
  readonly circuitMaxBytes: number;
  readonly circuitMaxDurationMs: number;
  /** Sees every payload forwarded (tests check that it is ciphertext). */
  onForward: ((payload: Uint8Array) => void) | undefined;
  readonly #c: RelayServerComponents;
  readonly #reservations = new Map<string, Reservation>();
  #circuits = 0;
  #circuitsOpened = 0;
  #granted = 0;
  #bytes = 0;
  readonly #refused: Record<RelayRefusalReason, number> = { off: 0, reservations_full: 0, circuits_full: 0, no_reservation: 0, target_unreachable: 0 };
  readonly #ended: Record<CircuitEndReason, number> = { closed: 0, bytes_limit: 0, duration_limit: 0, protocol: 0 };
  readonly #open = new Set<() => void>();

  constructor(components: RelayServerComponents, init: RelayServerInit = {}) {
    this.#c = components;
    const d = RELAY_SERVER_DEFAULTS;
    this.maxReservations = count('maxReservations', init.maxReservations ?? d.maxReservations);
    this.reservationTtlMs = positive('reservationTtlMs', init.reservationTtlMs ?? d.reservationTtlMs);
    this.maxCircuits = count('maxCircuits', init.maxCircuits ?? d.maxCircuits);
    this.maxCircuitsPerNode = count('maxCircuitsPerNode', init.maxCircuitsPerNode ?? d.maxCircuitsPerNode);
    this.circuitBytesPerSecond = positive('circuitBytesPerSecond', init.circuitBytesPerSecond ?? d.circuitBytesPerSecond);
    this.circuitMaxBytes = positive('circuitMaxBytes', init.circuitMaxBytes ?? d.circuitMaxBytes);
    this.circuitMaxDurationMs = positive('circuitMaxDurationMs', init.circuitMaxDurationMs ?? d.circuitMaxDurationMs);
    components.messenger.handle(RELAY_RESERVE, (_msg, peer) => this.#reserve(peer));
  }

  /** For the session's claimStream: takes a stream that starts with RELAY_CONNECT. */
  claim(first: Message, stream: FramedStream, peer: PeerInfo): boolean {
    if (first.t !== RELAY_CONNECT.type) return false;
    void this.#connect(first.target as Uint8Array, stream, peer);
    return true;
  }

  /** Closes every circuit (node stop). */
  close(): void {
    for (const end of [...this.#open]) end();
    this.#reservations.clear();
  }

  stats(): RelayServerStats {
    this.#expire();
    return {
      enabled: this.#c.enabled(),
      reservations: this.#reservations.size,
      maxReservations: this.maxReservations,
      circuits: this.#circuits,
      maxCircuits: this.maxCircuits,
      circuitsOpened: this.#circuitsOpened,
      reservationsGranted: this.#granted,
      bytesForwarded: this.#bytes,
      refused: { ...this.#refused },
      ended: { ...this.#ended },
    };
  }

  #reserve(peer: PeerInfo) {
    if (!this.#c.enabled()) {
      this.#refused.off++;
      throw relayOff();
    }
    this.#expire();
    const existing = this.#reservations.get(peer.nodeIdHex);
    if (!existing && this.#reservations.size >= this.maxReservations) {
      this.#refused.reservations_full++;
      throw new RelayError('MACULA_ERR_RELAY_LIMIT', `this relay keeps ${this.maxReservations} reservations and has no room; reserve with another relay`);
    }
    const expires = Date.now() + this.reservationTtlMs;
    if (existing && existing.conn === peer.connection) existing.expires = expires;
    else {
      const conn = peer.connection;
      this.#reservations.set(peer.nodeIdHex, { conn, expires, circuits: existing?.circuits ?? 0 });
      void conn.closed.then(() => {
        if (this.#reservations.get(peer.nodeIdHex)?.conn === conn) this.#reservations.delete(peer.nodeIdHex);
      });
    }
    this.#granted++;
    return {
      t: RELAY_RESERVED.type,
      ttlMs: this.reservationTtlMs,
      bytesPerSecond: this.circuitBytesPerSecond,
      maxBytes: this.circuitMaxBytes,
      maxDurationMs: this.circuitMaxDurationMs,
    };
  }

  #expire(): void {
    const now = Date.now();
    for (const [id, r] of this.#reservations) if (r.expires <= now || r.conn.isClosed) this.#reservations.delete(id);
  }

  async #connect(target: Uint8Array, dialer: FramedStream, peer: PeerInfo): Promise<void> {
    const refuse = async (reason: RelayRefusalReason, code: string, message: string) => {
      this.#refused[reason]++;
      await dialer.send({ t: RELAY_STATUS.type, ok: false, code, message }).catch(() => undefined);
      await dialer.end().catch(() => undefined);
    };
    if (!this.#c.enabled()) {
      const e = relayOff();
      return refuse('off', e.code, e.message);
    }
    this.#expire();
    const res = this.#reservations.get(toHex(target));
    if (!res) return refuse('no_reservation', 'MACULA_ERR_RELAY_NO_RESERVATION', 'the node has no reservation with this relay (it moved to another relay or left); look its address up again');
    if (this.#circuits >= this.maxCircuits || res.circuits >= this.maxCircuitsPerNode) {
      const limit = this.#circuits >= this.maxCircuits ? `${this.maxCircuits} circuits in total` : `${this.maxCircuitsPerNode} circuits to one node`;
      return refuse('circuits_full', 'MACULA_ERR_RELAY_LIMIT', `this relay carries ${limit} already; retry later or through another of the node's relays`);
    }
    let other: FramedStream;
    try {
      other = await this.#c.messenger.openStream(res.conn);
      await other.send({ t: RELAY_INCOMING.type, from: peer.nodeId, h: peer.connection.remoteAddress.host });
    } catch {
      return refuse('target_unreachable', 'MACULA_ERR_RELAY_FAILED', 'the relay could not reach the node; retry through another of its relays');
    }
    await dialer.send({ t: RELAY_STATUS.type, ok: true }).catch(() => undefined);
    this.#circuits++;
    res.circuits++;
    this.#circuitsOpened++;
    this.#pipe(dialer, other, () => {
      this.#circuits--;
      res.circuits--;
    });
  }

  /** Forwards RELAY_DATA both ways until both directions end or a limit closes the circuit. */
  #pipe(a: FramedStream, b: FramedStream, done: () => void): void {
    let bytes = 0;
    let tokens = this.circuitBytesPerSecond;
    let refilled = performance.now();
    let ended = false;
    let open = 2;
    const end = (reason: CircuitEndReason) => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      this.#open.delete(stop);
      this.#ended[reason]++;
      if (reason !== 'closed') {
        a.reset();
        b.reset();
      }
      done();
    };
    const stop = () => end('closed');
    this.#open.add(stop);
    const timer = setTimeout(() => end('duration_limit'), this.circuitMaxDurationMs);
    timer.unref();
    const rate = this.circuitBytesPerSecond;
    const pump = async (from: FramedStream, to: FramedStream) => {
      try {
        for (;;) {
          const msg = await from.read();
          if (msg === null || ended) break;
          if (msg.t !== RELAY_DATA.type) return end('protocol');
          const payload = msg.b as Uint8Array;
          bytes += payload.length;
          if (bytes > this.circuitMaxBytes) return end('bytes_limit');
          const now = performance.now();
          tokens = Math.min(rate, tokens + ((now - refilled) * rate) / 1000);
          refilled = now;
          tokens -= payload.length;
          if (tokens < 0) await new Promise((r) => setTimeout(r, (-tokens / rate) * 1000));
          if (ended) return;
          this.onForward?.(payload);
          this.#bytes += payload.length;
          await to.send({ t: RELAY_DATA.type, b: payload });
        }
        await to.end().catch(() => undefined);
      } catch {
        from.reset();
        to.reset();
      }
      if (--open === 0 || ended) end('closed');
    };
    void pump(a, b);
    void pump(b, a);
  }
}

function count(name: string, n: number): number {
  return intOption(`relay option limits.${name}`, n, 1);
}

function positive(name: string, v: number): number {
  return numberOption(`relay option limits.${name}`, v, 0, { exclusiveMin: true });
}
