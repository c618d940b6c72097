/**
 * The node's transport with relayed connections behind the same interface:
 * dialing a relayed address (src/transport/relayed-address.ts) opens a
 * circuit through one of its relays; inbound circuits come out of
 * acceptConnection() with the direct ones. Everything else is the inner
 * transport's (QUIC).
 */
import { isRelayedHost } from '../transport/relayed-address.js';
import { AcceptQueue } from '../transport/accept-queue.js';
import type { Connection, DialOptions, PeerAddress, Transport, TransportStats } from '../transport/types.js';
import { DialError } from '../util/errors.js';
import { formatAddress } from '../transport/types.js';

/** Inbound relayed connections waiting for acceptConnection(); more are closed. */
const MAX_PENDING_RELAYED = 256;

export class RelayingTransport implements Transport {
  readonly inner: Transport;
  /** Opens a circuit (RelayClient.dial); set once the node's relay client exists. */
  dialRelayed: ((address: PeerAddress, options?: DialOptions) => Promise<Connection>) | undefined;
  readonly #incoming = new AcceptQueue<Connection>(MAX_PENDING_RELAYED);
  #pumping = false;
  #relayedOpen = 0;

  constructor(inner: Transport) {
    this.inner = inner;
  }

  get kind(): string {
    return this.inner.kind;
  }

  get localNodeId(): Uint8Array {
    return this.inner.localNodeId;
  }

  get listenAddress(): PeerAddress | undefined {
    return this.inner.listenAddress;
  }

  listen(address: PeerAddress): Promise<PeerAddress> {
    return this.inner.listen(address);
  }

  dial(address: PeerAddress, options?: DialOptions): Promise<Connection> {
    if (!isRelayedHost(address.host)) return this.inner.dial(address, options);
    if (!this.dialRelayed) return Promise.reject(new DialError(formatAddress(address), `cannot dial ${formatAddress(address)}: this node does not use relays`));
    return this.dialRelayed(address, options).then((conn) => this.#track(conn));
  }

  /** An inbound relayed connection; false (and the caller closes it) when too many wait. */
  acceptRelayed(conn: Connection): boolean {
    if (!this.#incoming.push(conn)) return false;
    this.#track(conn);
    return true;
  }

  acceptConnection(): Promise<Connection | null> {
    if (!this.#pumping) {
      this.#pumping = true;
      void (async () => {
        for (;;) {
          const conn = await this.inner.acceptConnection();
          if (conn === null) break;
          if (!this.#incoming.push(conn)) conn.close();
        }
        for (const left of this.#incoming.close()) left.close();
      })();
    }
    return this.#incoming.shift();
  }

  async close(): Promise<void> {
    for (const left of this.#incoming.close()) left.close();
    await this.inner.close();
  }

  /** The inner transport's counters, plus the relayed connections open now. */
  stats(): TransportStats & { relayedConnectionsOpen: number } {
    return { ...this.inner.stats(), relayedConnectionsOpen: this.#relayedOpen };
  }

  #track(conn: Connection): Connection {
    this.#relayedOpen++;
    void conn.closed.then(() => this.#relayedOpen--);
    return conn;
  }
}
