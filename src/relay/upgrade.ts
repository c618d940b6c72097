/**
 * A relayed connection is replaced by a direct one once the node behind the
 * relay becomes reachable: that node sends RELAY_DIRECT with its direct
 * address over every relayed connection it has, and each peer dials it
 * there, expecting its node ID. The pool prefers a direct connection to a
 * relayed one (src/transport/pool.ts), so both sides keep the direct one and
 * close the relayed one after the duplicate grace period. A peer dials at
 * most once per relayed connection, so the message cannot make it dial
 * again and again.
 */
import type { Messenger } from '../session/messenger.js';
import type { PeerInfo } from '../session/peer-session.js';
import type { Connection, PeerAddress, Transport } from '../transport/types.js';
import type { Message } from '../wire/messages.js';
import { RELAY_DIRECT } from './messages.js';

export interface DirectUpgradeStats {
  /** RELAY_DIRECT sent by this node. */
  announced: number;
  /** Relayed connections replaced by a direct one this node dialed. */
  upgraded: number;
  failed: number;
}

export class DirectUpgrade {
  readonly #messenger: Messenger;
  readonly #transport: Transport;
  readonly #tried = new WeakSet<Connection>();
  readonly #stats: DirectUpgradeStats = { announced: 0, upgraded: 0, failed: 0 };

  constructor(components: { messenger: Messenger; transport: Transport }) {
    this.#messenger = components.messenger;
    this.#transport = components.transport;
    components.messenger.handle(RELAY_DIRECT, (msg, peer) => void this.#dial(msg, peer));
  }

  /** This node is reachable at `address` now: tell every peer it is connected to through a relay. */
  announce(address: PeerAddress): void {
    for (const conn of this.#messenger.pool.connections()) {
      if (conn.relayed !== true) continue;
      this.#stats.announced++;
      void this.#messenger
        .notify({ address: conn.remoteAddress, nodeId: conn.remoteNodeIdHex }, { t: RELAY_DIRECT.type, h: address.host, p: address.port })
        .catch(() => undefined);
    }
  }

  stats(): DirectUpgradeStats {
    return { ...this.#stats };
  }

  async #dial(msg: Message, peer: PeerInfo): Promise<void> {
    const relayed = peer.connection;
    if (relayed.relayed !== true || this.#tried.has(relayed)) return;
    this.#tried.add(relayed);
    try {
      const conn = await this.#transport.dial({ host: msg.h as string, port: msg.p as number }, { expectedNodeId: peer.nodeId, timeoutMs: 5000 });
      if (this.#messenger.pool.accept(conn)) this.#stats.upgraded++;
    } catch {
      this.#stats.failed++;
    }
  }
}
