/**
 * An in-process DhtNetwork: Dht instances (or scripted responders) call each
 * other directly, with optional per-node delay, silence and failure. For
 * unit tests and quick simulations of the DHT logic alone; the transport
 * stack (framing, QUIC, memory transport) is exercised elsewhere.
 *
 * It keeps the contract of a real network: messages are validated against
 * the wire schema in both directions, the node reached must have the ID the
 * contact names, a request times out after `timeoutMs`, the receiver
 * learns the sender's contact as the node would (onContact), a Dht's
 * handlers are registered as with the node's messenger (`Dht.serve`, PING
 * answered as the node answers it), and a handler's error reaches the
 * requester as the RemoteError the session makes of an ERROR answer.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { PeerAddress } from '../../src/transport/types.js';
import { formatAddress } from '../../src/transport/types.js';
import { DialError, fromWire, PeerIdMismatchError, TimeoutError, toWire } from '../../src/util/errors.js';
import { UnsupportedMessageError } from '../../src/wire/messages.js';
import { PING, PONG, PROTOCOL_VERSION, validateMessage, type Message } from '../../src/wire/messages.js';
import type { Contact } from '../../src/dht/contact.js';
import type { Dht } from '../../src/dht/dht.js';
import { bytesEqual, idKey } from '../../src/dht/id.js';
import type { DhtMessage } from '../../src/dht/messages.js';
import type { DhtPeer } from '../../src/dht/handlers/index.js';
import type { DhtNetwork } from '../../src/dht/network.js';

/** Answers a request; `undefined` means never answer (a silent peer). */
export type Responder = (msg: DhtMessage, from: Contact) => DhtMessage | undefined | Promise<DhtMessage | undefined>;

export interface LocalPeerBehaviour {
  /** Delay before the answer, in ms. Default 0. */
  delayMs?: number;
  /** Never answers (the request times out). */
  silent?: boolean;
  /** Unreachable: requests and dials fail at once. */
  down?: boolean;
}

interface Peer {
  contact: Contact;
  respond: Responder;
  onContact?: (c: Contact) => void;
  behaviour: LocalPeerBehaviour;
}

export class LocalDhtHub {
  readonly #peers = new Map<string, Peer>();
  readonly #byAddress = new Map<string, Peer>();
  /** Validate every message against the wire schema (catches schema drift; costs a little). */
  validate: boolean;
  requestsSent = 0;

  constructor(options: { validate?: boolean } = {}) {
    this.validate = options.validate ?? true;
  }

  /** Adds a Dht listening at `address` (build it with `network()` of its own contact). */
  addDht(dht: Dht, address: PeerAddress): void {
    const handlers = new Map<number, (msg: Message, peer: DhtPeer) => DhtMessage>();
    handlers.set(PING.type, () => ({ t: PONG.type }));
    dht.serve({ handle: (def, handler) => void handlers.set(def.type, handler as (msg: Message, peer: DhtPeer) => DhtMessage) });
    const respond: Responder = (msg, from) => {
      const handler = handlers.get(msg.t);
      try {
        if (!handler) throw new UnsupportedMessageError(msg.t);
        const origin = { role: from.port === 0 ? 'client' : 'node', source: from.host } as const;
        return handler({ ...msg, v: PROTOCOL_VERSION }, { contact: from, origin });
      } catch (err) {
        throw fromWire(toWire(err));
      }
    };
    this.addResponder({ id: dht.id, ...address }, respond, (c) => dht.onContact(c));
  }

  /** Adds a scripted peer. */
  addResponder(contact: Contact, respond: Responder, onContact?: (c: Contact) => void): void {
    const peer: Peer = { contact, respond, onContact, behaviour: {} };
    this.#peers.set(idKey(contact.id), peer);
    this.#byAddress.set(formatAddress(contact), peer);
  }

  /** Changes how a peer behaves (delay, silence, down). */
  setBehaviour(id: Uint8Array, behaviour: LocalPeerBehaviour): void {
    const peer = this.#peers.get(idKey(id));
    if (peer) peer.behaviour = behaviour;
  }

  /** The DhtNetwork of the node whose own contact is `self` (port 0 for a client). */
  network(self: Contact): DhtNetwork {
    return {
      request: (to, msg, timeoutMs) => this.#request(self, to, msg, timeoutMs),
      connect: async (address) => {
        const peer = this.#byAddress.get(formatAddress(address));
        if (!peer || peer.behaviour.down) throw new DialError(formatAddress(address), `nobody answers at ${formatAddress(address)}`);
        return { ...peer.contact };
      },
    };
  }

  async #request(self: Contact, to: Contact, msg: DhtMessage, timeoutMs: number): Promise<DhtMessage> {
    this.requestsSent++;
    const address = formatAddress(to);
    const peer = this.#byAddress.get(address);
    if (!peer || peer.behaviour.down) throw new DialError(address, `nobody answers at ${address}`);
    if (!bytesEqual(peer.contact.id, to.id)) throw new PeerIdMismatchError(address, idKey(to.id), idKey(peer.contact.id));
    if (this.validate) validateMessage({ v: PROTOCOL_VERSION, id: 1, ...msg });
    const { delayMs = 0, silent = false } = peer.behaviour;
    if (silent) return new Promise((_resolve, reject) => setTimeout(() => reject(new TimeoutError('DHT request', timeoutMs)), timeoutMs));
    if (delayMs >= timeoutMs) {
      await sleep(timeoutMs);
      throw new TimeoutError('DHT request', timeoutMs);
    }
    if (delayMs > 0) await sleep(delayMs);
    peer.onContact?.(self);
    const res = await peer.respond(msg, self);
    if (res === undefined) {
      await sleep(Math.max(0, timeoutMs - delayMs));
      throw new TimeoutError('DHT request', timeoutMs);
    }
    if (this.validate) validateMessage({ v: PROTOCOL_VERSION, id: 1, ...res });
    return res;
  }
}
