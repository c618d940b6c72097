/**
 * The reachability check (as libp2p's AutoNAT): a node asks a few peers to
 * dial it back, on a fresh connection, at the host its request came from and
 * the port it listens on. If they get through (the dial-back's TLS
 * handshake proves our node ID), others can reach us: `public`; if the dials
 * fail, we are behind a NAT or a firewall: `private`; no answers: `unknown`.
 * Re-checked every `intervalMs`, sooner while the answer is unknown, and
 * when the observed or announced address changes.
 *
 * Serving the check: a peer's DIAL_BACK is dialed only at the host its
 * request came from (never a host it names, so nobody can aim our dials at
 * a third party), one at a time per peer and `maxConcurrentDialBacks` in
 * total; more are refused with MACULA_ERR_LIMIT and counted.
 */
import { toHex } from '../identity/identity.js';
import type { Messenger } from '../session/messenger.js';
import type { PeerInfo } from '../session/peer-session.js';
import type { Connection, PeerAddress, Transport } from '../transport/types.js';
import { LimitExceededError } from '../util/errors.js';
import { intOption, numberOption } from '../util/options.js';
import { shuffle } from '../util/shuffle.js';
import { isRelayedHost } from '../transport/relayed-address.js';
import { DialBackNotANodeError, DialBackRelayedError } from './errors.js';
import type { Message } from '../wire/messages.js';
import { DIAL_BACK, DIAL_BACK_RESULT } from './messages.js';
import type { ObservedAddresses } from './observed.js';

export type Reachability = 'public' | 'private' | 'unknown';

export interface ReachabilityInit {
  /** Peers asked per check. Default 3. */
  probes?: number;
  /** Time between checks once an answer is known. Default 5 min. */
  intervalMs?: number;
  /** Time between checks while the answer is unknown (no peers yet, no answers). Default 10 s. */
  retryMs?: number;
  /** First check after start. Default 1 s. */
  firstCheckMs?: number;
  /** How long a dial-back may take. Default 3 s. */
  dialBackTimeoutMs?: number;
  /** Dial-backs this node runs for others at once; more are refused (MACULA_ERR_LIMIT). Default 8. */
  maxConcurrentDialBacks?: number;
}

export const DEFAULT_REACHABILITY_PROBES = 3;
export const DEFAULT_REACHABILITY_INTERVAL_MS = 5 * 60_000;
export const DEFAULT_REACHABILITY_RETRY_MS = 10_000;
export const DEFAULT_DIAL_BACK_TIMEOUT_MS = 3000;
export const DEFAULT_MAX_CONCURRENT_DIAL_BACKS = 8;
export const DEFAULT_REACHABILITY_FIRST_CHECK_MS = 1000;

/** The reachability check's defaults. */
export const REACHABILITY_DEFAULTS = Object.freeze({
  probes: DEFAULT_REACHABILITY_PROBES,
  intervalMs: DEFAULT_REACHABILITY_INTERVAL_MS,
  retryMs: DEFAULT_REACHABILITY_RETRY_MS,
  firstCheckMs: DEFAULT_REACHABILITY_FIRST_CHECK_MS,
  dialBackTimeoutMs: DEFAULT_DIAL_BACK_TIMEOUT_MS,
  maxConcurrentDialBacks: DEFAULT_MAX_CONCURRENT_DIAL_BACKS,
});

/** A peer the check may ask: a mesh node with its listen address. */
export interface ReachabilityPeer extends PeerAddress {
  id: Uint8Array;
}

export interface ReachabilityComponents {
  messenger: Messenger;
  transport: Transport;
  observed: ObservedAddresses;
  /** Nodes the check may ask (the routing table's contacts). */
  peers(): ReachabilityPeer[];
  /** The address this node is reached at without a relay (its port is what peers dial back). */
  directAddress(): PeerAddress;
}

export interface ReachabilityStats {
  status: Reachability;
  /** Unix ms of the last finished check (0: none yet). */
  checkedAt: number;
  checks: number;
  /** Answers to our requests, by outcome, in total: dialed back, could not dial back, no answer (error, timeout, refusal). */
  answers: { reached: number; unreached: number; none: number };
  /** Dial-backs this node ran for others, by outcome. */
  dialBacks: { reached: number; unreached: number; refused: number };
  /** Dial-backs running now, and their bound. */
  dialBacksRunning: number;
  maxConcurrentDialBacks: number;
}

/** A verdict from the answers of one check; a tie or no answers is `unknown`. */
export function verdict(reached: number, unreached: number): Reachability {
  if (reached > unreached) return 'public';
  if (unreached > reached) return 'private';
  return 'unknown';
}

export class ReachabilityCheck {
  readonly probes: number;
  readonly intervalMs: number;
  readonly retryMs: number;
  readonly dialBackTimeoutMs: number;
  readonly maxConcurrentDialBacks: number;
  /** Called when the status changes. */
  onChange: ((status: Reachability) => void) | undefined;
  readonly #c: ReachabilityComponents;
  readonly #firstCheckMs: number;
  #status: Reachability = 'unknown';
  #checkedAt = 0;
  #checks = 0;
  readonly #answers = { reached: 0, unreached: 0, none: 0 };
  readonly #dialBacks = { reached: 0, unreached: 0, refused: 0 };
  /** Peers whose DIAL_BACK we are serving now. */
  readonly #serving = new Set<string>();
  /**
   * Dial-backs expected, per peer: their inbound connections are kept out of
   * the pool. One per request in flight, and one per "reached" answer whose
   * connection has not arrived yet: the answer comes over the connection in
   * use and can overtake the dial-back's last handshake packet.
   */
  readonly #awaiting = new Map<string, DialBackWait[]>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<Reachability> | undefined;
  /** addressChanged() came while a check ran. */
  #changedWhileRunning = false;
  #stopped = true;
  #lastPort = 0;

  constructor(components: ReachabilityComponents, init: ReachabilityInit = {}) {
    this.#c = components;
    const d = REACHABILITY_DEFAULTS;
    this.probes = intOption('reachability option probes', init.probes ?? d.probes, 1);
    this.intervalMs = duration('intervalMs', init.intervalMs ?? d.intervalMs);
    this.retryMs = duration('retryMs', init.retryMs ?? d.retryMs);
    this.dialBackTimeoutMs = duration('dialBackTimeoutMs', init.dialBackTimeoutMs ?? d.dialBackTimeoutMs);
    // 0: this node serves no dial-backs (it still asks others)
    this.maxConcurrentDialBacks = intOption('reachability option maxConcurrentDialBacks', init.maxConcurrentDialBacks ?? d.maxConcurrentDialBacks, 0);
    this.#firstCheckMs = numberOption('reachability option firstCheckMs', init.firstCheckMs ?? d.firstCheckMs, 0);
    components.messenger.handle(DIAL_BACK, (msg, peer) => this.#serve(msg, peer));
    components.messenger.claimInbound = (conn) => this.#claim(conn);
  }

  get status(): Reachability {
    return this.#status;
  }

  start(): void {
    this.#stopped = false;
    this.#schedule(this.#firstCheckMs);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The address changed (observed or announced): check again soon. */
  addressChanged(): void {
    if (this.#stopped) return;
    // A check running now may have dialed the old address: check again once it is done.
    if (this.#running) this.#changedWhileRunning = true;
    else this.#schedule(this.#firstCheckMs);
  }

  /** Runs one check now (a check in progress is shared) and resolves with the status. */
  check(): Promise<Reachability> {
    this.#running ??= this.#check().finally(() => {
      this.#running = undefined;
      const changed = this.#changedWhileRunning;
      this.#changedWhileRunning = false;
      if (!this.#stopped) this.#schedule(changed ? this.#firstCheckMs : this.#status === 'unknown' ? this.retryMs : this.intervalMs);
    });
    return this.#running;
  }

  stats(): ReachabilityStats {
    return {
      status: this.#status,
      checkedAt: this.#checkedAt,
      checks: this.#checks,
      answers: { ...this.#answers },
      dialBacks: { ...this.#dialBacks },
      dialBacksRunning: this.#serving.size,
      maxConcurrentDialBacks: this.maxConcurrentDialBacks,
    };
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.check(), ms);
    this.#timer.unref();
  }

  async #check(): Promise<Reachability> {
    const port = this.#c.directAddress().port;
    if (this.#lastPort !== 0 && port !== this.#lastPort) this.#status = 'unknown';
    this.#lastPort = port;
    // Only peers reached directly: a dial-back through a relay would prove nothing about our own address.
    const peers = shuffle(this.#c.peers().filter((p) => !isRelayedHost(p.host))).slice(0, this.probes);
    let reached = 0;
    let unreached = 0;
    await Promise.all(
      peers.map(async (peer) => {
        const hex = toHex(peer.id);
        const wait: DialBackWait = { claimed: false };
        this.#awaiting.set(hex, [...(this.#awaiting.get(hex) ?? []), wait]);
        let late = false;
        try {
          const answer = await this.#c.messenger.request(
            { address: peer, nodeId: peer.id },
            { t: DIAL_BACK.type, port },
            // The peer's dial-back runs inside this deadline.
            { timeoutMs: this.dialBackTimeoutMs + 5000 },
          );
          const obs = answer.obs as { h: string; p: number };
          this.#c.observed.record({ host: obs.h, port: obs.p }, hex);
          if (answer.ok === true) reached++;
          else unreached++;
          late = answer.ok === true && !wait.claimed;
        } catch {
          this.#answers.none++;
        } finally {
          // A connection that got through but is not here yet arrives within about a round trip (a few if
          // handshake packets were lost); the dial's own bound is a generous wait for it.
          if (late) setTimeout(() => this.#unwait(hex, wait), this.dialBackTimeoutMs).unref();
          else this.#unwait(hex, wait);
        }
      }),
    );
    this.#answers.reached += reached;
    this.#answers.unreached += unreached;
    this.#checks++;
    this.#checkedAt = Date.now();
    const status = verdict(reached, unreached);
    // No answers keep what was known: an unanswered check proves nothing either way.
    if (reached + unreached > 0 && status !== this.#status) {
      this.#status = status;
      this.onChange?.(status);
    }
    return this.#status;
  }

  #unwait(hex: string, wait: DialBackWait): void {
    const waits = this.#awaiting.get(hex)?.filter((w) => w !== wait);
    if (waits === undefined || waits.length === 0) this.#awaiting.delete(hex);
    else this.#awaiting.set(hex, waits);
  }

  async #serve(msg: Message, peer: PeerInfo): Promise<{ t: number; ok: boolean; code?: string; obs: { h: string; p: number } }> {
    const from = peer.connection.remoteAddress;
    const obs = { h: from.host, p: from.port };
    if (peer.role !== 'node') throw new DialBackNotANodeError();
    if (peer.connection.relayed === true) throw new DialBackRelayedError();
    if (this.#serving.has(peer.nodeIdHex) || this.#serving.size >= this.maxConcurrentDialBacks) {
      this.#dialBacks.refused++;
      throw new LimitExceededError('dial-backs running', this.maxConcurrentDialBacks, 'retry the reachability check later');
    }
    this.#serving.add(peer.nodeIdHex);
    let conn: Connection | undefined;
    try {
      conn = await this.#c.transport.dial({ host: from.host, port: msg.port as number }, { expectedNodeId: peer.nodeId, timeoutMs: this.dialBackTimeoutMs });
      this.#dialBacks.reached++;
      return { t: DIAL_BACK_RESULT.type, ok: true, obs };
    } catch (err) {
      this.#dialBacks.unreached++;
      return { t: DIAL_BACK_RESULT.type, ok: false, code: (err as { code?: string }).code ?? 'MACULA_ERR_TRANSPORT', obs };
    } finally {
      this.#serving.delete(peer.nodeIdHex);
      conn?.close();
    }
  }

  /**
   * An inbound connection from a node we asked for a dial-back, while we
   * expect one from it and still hold the connection the request went over,
   * is that dial-back (the node has no other reason to dial us anew). It is
   * not pooled: its dialer closes it at once, and the pool would only keep
   * it aside as a duplicate the peer never speaks on (see
   * src/transport/pool.ts) until then.
   */
  #claim(conn: Connection): boolean {
    const wait = this.#awaiting.get(conn.remoteNodeIdHex)?.find((w) => !w.claimed);
    if (wait === undefined) return false;
    const inUse = this.#c.messenger.pool.connectionTo(conn.remoteNodeIdHex);
    if (inUse === undefined || inUse === conn) return false;
    wait.claimed = true;
    // The dialer closes it once its handshake is done; close it here too in case it does not.
    setTimeout(() => conn.close(), 2000).unref();
    return true;
  }
}

/** One dial-back asked for; `claimed` once its connection arrived. */
interface DialBackWait {
  claimed: boolean;
}

function duration(name: string, ms: number): number {
  return numberOption(`reachability option ${name}`, ms, 0, { exclusiveMin: true });
}
