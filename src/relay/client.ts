/**
 * The private side of relaying: a node found `private` keeps reservations
 * with a few relays (reachable nodes of its routing table that accept
 * RELAY_RESERVE), renews them, and replaces one as soon as its connection
 * is lost or a renewal fails. Its relayed address names them; the node
 * announces that address (HELLO `addr`, registry and subscription records).
 *
 * Both ends of a circuit live here too: dial() opens a circuit through one
 * of the target's relays and runs the Noise handshake as initiator; a
 * RELAY_INCOMING stream is answered as responder and handed to the
 * transport as an inbound connection.
 */
import { type Identity, toHex } from '../identity/identity.js';
import type { Messenger } from '../session/messenger.js';
import type { PeerInfo } from '../session/peer-session.js';
import { isRelayedHost, MAX_RELAYS_IN_ADDRESS, relayedAddress, relaysOf } from '../transport/relayed-address.js';
import { formatAddress, type Connection, type DialOptions, type PeerAddress } from '../transport/types.js';
import { DialError } from '../util/errors.js';
import { intOption, numberOption } from '../util/options.js';
import { shuffle } from '../util/shuffle.js';
import type { FramedStream } from '../wire/framed-stream.js';
import { PING, type Message } from '../wire/messages.js';
import { RelayError } from './errors.js';
import { RELAY_CONNECT, RELAY_DATA, RELAY_INCOMING, RELAY_RESERVE, RELAY_STATUS } from './messages.js';
import { RelayedConnection } from './relayed-connection.js';
import { SecureChannel, type MessagePipe } from './secure-channel.js';

export interface RelayClientInit {
  /** Relays a private node keeps reservations with. Default 2 (at most 3: what a relayed address names). */
  relays?: number;
  /** How long a reservation request may take. Default 5 s. */
  reserveTimeoutMs?: number;
  /** A relay that refused is not asked again for this long. Default 60 s. */
  refusedBackoffMs?: number;
  /** While fewer relays than wanted are reserved, look for more this often. Default 2 s. */
  retryMs?: number;
}

export const DEFAULT_RELAYS = 2;
export const DEFAULT_RELAY_RESERVE_TIMEOUT_MS = 5000;
export const DEFAULT_RELAY_REFUSED_BACKOFF_MS = 60_000;
export const DEFAULT_RELAY_RETRY_MS = 2000;

/** How a private node keeps relays by default (the node's `relay.client`). */
export const RELAY_CLIENT_DEFAULTS = Object.freeze({
  relays: DEFAULT_RELAYS,
  reserveTimeoutMs: DEFAULT_RELAY_RESERVE_TIMEOUT_MS,
  refusedBackoffMs: DEFAULT_RELAY_REFUSED_BACKOFF_MS,
  retryMs: DEFAULT_RELAY_RETRY_MS,
});

export interface RelayCandidate extends PeerAddress {
  id: Uint8Array;
}

export interface RelayClientComponents {
  messenger: Messenger;
  identity: Identity;
  realm: string;
  /** Nodes that may relay for us (the routing table's contacts). */
  candidates(): RelayCandidate[];
  /** An inbound relayed connection, for the transport's accept queue; false when it was refused. */
  accept(conn: Connection): boolean;
}

export interface RelayClientStats {
  /** Looking for relays (the node was found private). */
  active: boolean;
  relays: string[];
  wanted: number;
  reservations: number;
  reservationFailures: number;
  relaysLost: number;
  circuitsDialed: number;
  circuitsAccepted: number;
  dialFailures: number;
}

interface Held {
  address: PeerAddress;
  nodeIdHex: string;
  timer: NodeJS.Timeout | undefined;
}

export class RelayClient {
  readonly wanted: number;
  readonly reserveTimeoutMs: number;
  readonly refusedBackoffMs: number;
  readonly retryMs: number;
  /** Called when the set of relays changes (the relayed address with it). */
  onChange: (() => void) | undefined;
  readonly #c: RelayClientComponents;
  readonly #held = new Map<string, Held>();
  readonly #refusedUntil = new Map<string, number>();
  #active = false;
  #maintaining: Promise<void> | undefined;
  #retry: NodeJS.Timeout | undefined;
  readonly #stats = { reservations: 0, reservationFailures: 0, relaysLost: 0, circuitsDialed: 0, circuitsAccepted: 0, dialFailures: 0 };

  constructor(components: RelayClientComponents, init: RelayClientInit = {}) {
    this.#c = components;
    const d = RELAY_CLIENT_DEFAULTS;
    this.wanted = intOption('relay option client.relays', init.relays ?? d.relays, 1, MAX_RELAYS_IN_ADDRESS);
    this.reserveTimeoutMs = duration('reserveTimeoutMs', init.reserveTimeoutMs ?? d.reserveTimeoutMs);
    this.refusedBackoffMs = numberOption('relay option client.refusedBackoffMs', init.refusedBackoffMs ?? d.refusedBackoffMs, 0);
    this.retryMs = duration('retryMs', init.retryMs ?? d.retryMs);
  }

  /** Private: keep relays; public or unknown: let them go (the node is reached directly). */
  setActive(active: boolean): void {
    if (active === this.#active) return;
    this.#active = active;
    if (active) void this.#maintain();
    else {
      clearTimeout(this.#retry);
      const had = this.#held.size > 0;
      for (const h of this.#held.values()) clearTimeout(h.timer);
      this.#held.clear();
      if (had) this.onChange?.();
    }
  }

  stop(): void {
    this.setActive(false);
  }

  /** The relayed address naming the current relays, or undefined without any. */
  relayedAddress(): PeerAddress | undefined {
    const relays = [...this.#held.values()].map((h) => h.address);
    return relays.length === 0 ? undefined : relayedAddress(relays);
  }

  stats(): RelayClientStats {
    return { active: this.#active, relays: [...this.#held.values()].map((h) => formatAddress(h.address)), wanted: this.wanted, ...this.#stats };
  }

  // ---- reservations ---------------------------------------------------------

  #maintain(): Promise<void> {
    this.#maintaining ??= this.#fill().finally(() => {
      this.#maintaining = undefined;
      clearTimeout(this.#retry);
      if (this.#active && this.#held.size < this.wanted) {
        this.#retry = setTimeout(() => void this.#maintain(), this.retryMs);
        this.#retry.unref();
      }
    });
    return this.#maintaining;
  }

  async #fill(): Promise<void> {
    const now = Date.now();
    const usable = shuffle(this.#c.candidates()).filter((c) => !isRelayedHost(c.host) && !this.#held.has(toHex(c.id)));
    const fresh = usable.filter((c) => (this.#refusedUntil.get(toHex(c.id)) ?? 0) <= now);
    // A refusal is often passing (a node not yet found public does not relay): with no other
    // candidate left, the one whose backoff ends first is asked again, one per round.
    const waiting = usable.filter((c) => !fresh.includes(c)).sort((a, b) => this.#refusedUntil.get(toHex(a.id))! - this.#refusedUntil.get(toHex(b.id))!);
    const candidates = fresh.length > 0 ? fresh : waiting.slice(0, 1);
    for (const c of candidates) {
      if (!this.#active || this.#held.size >= this.wanted) return;
      const hex = toHex(c.id);
      const held: Held = { address: { host: c.host, port: c.port }, nodeIdHex: hex, timer: undefined };
      if (await this.#reserve(held)) {
        this.#held.set(hex, held);
        this.#stats.reservations++;
        this.onChange?.();
      }
    }
  }

  /** Reserves (or renews) with one relay; false when it refused or did not answer. */
  async #reserve(held: Held): Promise<boolean> {
    try {
      const answer = await this.#c.messenger.request({ address: held.address, nodeId: held.nodeIdHex }, { t: RELAY_RESERVE.type }, { timeoutMs: this.reserveTimeoutMs });
      const conn = this.#c.messenger.pool.connectionTo(held.nodeIdHex);
      if (!conn) throw new Error('no connection');
      const ttlMs = Math.max(2000, answer.ttlMs as number);
      clearTimeout(held.timer);
      held.timer = setTimeout(() => void this.#renew(held), ttlMs / 2);
      held.timer.unref();
      if (!this.#held.has(held.nodeIdHex)) void conn.closed.then(() => this.#lost(held));
      return true;
    } catch {
      this.#stats.reservationFailures++;
      this.#refusedUntil.set(held.nodeIdHex, Date.now() + this.refusedBackoffMs);
      if (this.#refusedUntil.size > 1024) this.#refusedUntil.delete(this.#refusedUntil.keys().next().value!);
      return false;
    }
  }

  async #renew(held: Held): Promise<void> {
    if (this.#held.get(held.nodeIdHex) !== held) return;
    if (!(await this.#reserve(held))) this.#lost(held);
  }

  #lost(held: Held): void {
    if (this.#held.get(held.nodeIdHex) !== held) return;
    clearTimeout(held.timer);
    this.#held.delete(held.nodeIdHex);
    this.#stats.relaysLost++;
    this.onChange?.();
    if (this.#active) void this.#maintain();
  }

  // ---- circuits -------------------------------------------------------------

  /** Dials a node at a relayed address: through each of its relays in turn until one circuit opens. */
  async dial(address: PeerAddress, options: DialOptions = {}): Promise<Connection> {
    const where = formatAddress(address);
    const relays = relaysOf(address.host);
    if (!relays) throw new DialError(where, `${where} is not a valid relayed address`);
    const expected = options.expectedNodeId === undefined ? undefined : typeof options.expectedNodeId === 'string' ? options.expectedNodeId : toHex(options.expectedNodeId);
    if (expected === undefined) throw new DialError(where, `dialing ${where} needs the node ID of the node behind the relay`);
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    let last: unknown;
    for (const relay of relays) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const attempt = this.#circuit(relay, expected, address);
      try {
        const conn = await withTimeout(attempt, left, where);
        this.#stats.circuitsDialed++;
        return conn;
      } catch (err) {
        // A circuit that opens after its deadline is closed, not left behind.
        attempt.then((late) => late.close(), () => undefined);
        last = err;
      }
    }
    this.#stats.dialFailures++;
    if (last instanceof Error && 'code' in last && (last as { code: string }).code === 'MACULA_ERR_PEER_ID_MISMATCH') throw last;
    throw new DialError(where, `cannot reach ${expected.slice(0, 12)} through its relays ${relays.map(formatAddress).join(', ')}: ${(last as Error | undefined)?.message ?? 'timed out'}`, { cause: last });
  }

  async #circuit(relay: PeerAddress, target: string, address: PeerAddress): Promise<Connection> {
    const messenger = this.#c.messenger;
    const conn = await messenger.pool.get(relay);
    // The relay serves circuits only to peers past HELLO: make sure ours is.
    await messenger.requestOn(conn, { t: PING.type });
    const stream = await messenger.openStream(conn);
    try {
      await stream.send({ t: RELAY_CONNECT.type, target: Buffer.from(target, 'hex') });
      const status = await stream.read();
      if (status === null || status.t !== RELAY_STATUS.type) throw new RelayError('MACULA_ERR_RELAY_FAILED', `the relay at ${formatAddress(relay)} ended the circuit`);
      if (status.ok !== true) throw new RelayError((status.code as 'MACULA_ERR_RELAY_LIMIT') ?? 'MACULA_ERR_RELAY_FAILED', String(status.message ?? 'refused'));
      const channel = await SecureChannel.handshake(pipeOf(stream), this.#c.identity, { initiator: true, realm: this.#c.realm, expectedNodeId: target, where: formatAddress(address) });
      return new RelayedConnection(channel, { remoteAddress: address, direction: 'outbound' });
    } catch (err) {
      stream.reset();
      throw err;
    }
  }

  /** For the session's claimStream: a relay brings a dialer (RELAY_INCOMING). */
  claim(first: Message, stream: FramedStream, relay: PeerInfo): boolean {
    if (first.t !== RELAY_INCOMING.type) return false;
    // Only relays we hold a reservation with may bring dialers.
    if (!this.#held.has(relay.nodeIdHex)) {
      stream.reset();
      return true;
    }
    const held = this.#held.get(relay.nodeIdHex)!;
    void (async () => {
      try {
        const channel = await SecureChannel.handshake(pipeOf(stream), this.#c.identity, { initiator: false, realm: this.#c.realm });
        // The dialer's host as the relay saw it: only a hint for its DHT contact (its HELLO may name a relayed address instead).
        const remoteAddress = { host: String(first.h), port: held.address.port };
        const conn = new RelayedConnection(channel, { remoteAddress, direction: 'inbound' });
        if (this.#c.accept(conn)) this.#stats.circuitsAccepted++;
        else conn.close();
      } catch {
        stream.reset();
      }
    })();
    return true;
  }
}

/** A circuit's stream as the secure channel's message pipe: one RELAY_DATA per message. */
function pipeOf(stream: FramedStream): MessagePipe {
  return {
    send: (bytes) => stream.send({ t: RELAY_DATA.type, b: bytes }),
    read: async () => {
      const msg = await stream.read();
      if (msg === null) return null;
      if (msg.t !== RELAY_DATA.type) throw new RelayError('MACULA_ERR_RELAY_FAILED', `unexpected message ${msg.t} on a circuit`);
      return msg.b as Uint8Array;
    },
    close: () => stream.reset(),
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, where: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DialError(where, `cannot reach a node at ${where}: timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function duration(name: string, ms: number): number {
  return numberOption(`relay option client.${name}`, ms, 0, { exclusiveMin: true });
}
