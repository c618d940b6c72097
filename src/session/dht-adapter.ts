/**
 * Connects the DHT to the messenger: outgoing DHT requests go through the
 * connection pool (dialing with the contact's expected node ID), incoming
 * ones are routed to the DHT's handlers, and every message from a node
 * refreshes its routing-table contact.
 */
import type { Contact } from '../dht/contact.js';
import type { Dht } from '../dht/dht.js';
import type { DhtMessage } from '../dht/messages.js';
import type { DhtNetwork } from '../dht/network.js';
import type { PeerAddress } from '../transport/types.js';
import { PING } from '../wire/messages.js';
import type { Messenger } from './messenger.js';
import type { PeerInfo } from './peer-session.js';

export class MessengerDhtNetwork implements DhtNetwork {
  readonly #messenger: Messenger;

  constructor(messenger: Messenger) {
    this.#messenger = messenger;
  }

  request(to: Contact, msg: DhtMessage, timeoutMs: number): Promise<DhtMessage> {
    return this.#messenger.request({ address: to, nodeId: to.id }, msg, { timeoutMs });
  }

  async connect(address: PeerAddress, timeoutMs: number): Promise<Contact> {
    const t0 = performance.now();
    const conn = await this.#messenger.pool.get(address, undefined, timeoutMs);
    // A round trip proves the peer speaks our protocol in our realm (the
    // HELLO exchange precedes it); a QUIC handshake alone does not.
    await this.#messenger.requestOn(conn, { t: PING.type }, { timeoutMs: Math.max(1, timeoutMs - (performance.now() - t0)) });
    return { id: conn.remoteNodeId, host: address.host, port: address.port };
  }

  isConnected(id: Uint8Array): boolean {
    const conn = this.#messenger.pool.connectionTo(Buffer.from(id).toString('hex'));
    return conn !== undefined && !conn.isClosed;
  }
}

/** The contact of a node peer as the DHT sees it, or undefined for light clients and unknown ports. */
export function contactOf(peer: PeerInfo): Contact | undefined {
  if (!peer.greeted || peer.role !== 'node' || peer.address.port === 0) return undefined;
  return { id: peer.nodeId, host: peer.address.host, port: peer.address.port };
}

/** Registers the DHT's request handlers with the messenger: the messenger's dispatch is the only one. */
export function serveDht(messenger: Messenger, dht: Dht): void {
  dht.serve({
    handle: (def, handler) =>
      messenger.handle(def, (msg, peer, bytes) =>
        handler(
          msg,
          {
            contact: contactOf(peer) ?? { id: peer.nodeId, host: peer.address.host, port: 0 },
            // The source is the verified connection's address; the role is what the peer said in HELLO.
            origin: { role: peer.role, source: peer.connection.remoteAddress.host },
          },
          bytes,
        ),
      ),
  });
}
