/**
 * What the DHT needs from the network, and nothing more. The node's
 * messenger implements it over a Transport; tests and the simulator may
 * implement it in-process (see test/helpers/local-dht-network.ts).
 */
import type { PeerAddress } from '../transport/types.js';
import type { Contact } from './contact.js';
import type { DhtMessage } from './messages.js';

export interface DhtNetwork {
  /**
   * Sends request `msg` (`t` plus fields; the implementation adds `v` and
   * `id`) to `to` and resolves with the validated response message.
   *
   * Contract:
   * - the node reached must have node ID `to.id` (dial with `expectedNodeId`):
   *   contacts come from other peers, so an address alone proves nothing;
   * - rejects with a MaculaError once `timeoutMs` has passed without a
   *   response (TimeoutError, code MACULA_ERR_TIMEOUT) or when the dial, the
   *   connection or the stream fails;
   * - an ERROR response rejects with a RemoteError (its code and message),
   *   as the session does; the DHT reports it as a DhtRemoteError.
   */
  request(to: Contact, msg: DhtMessage, timeoutMs: number): Promise<DhtMessage>;

  /**
   * Dials an address whose node ID is not known yet (bootstrap) and resolves
   * with the contact: the ID from the verified handshake, the address as given.
   */
  connect(address: PeerAddress, timeoutMs: number): Promise<Contact>;

  /**
   * Whether the node with this ID holds a verified connection to us now
   * (the record store lets present publishers make room under a full key).
   * Absent: nobody counts as present.
   */
  isConnected?(id: Uint8Array): boolean;
}

/** Minimal logger; the node passes its own. */
export interface DhtLogger {
  warn(message: string): void;
  debug?(message: string): void;
}

export const silentLogger: DhtLogger = { warn: () => {} };
