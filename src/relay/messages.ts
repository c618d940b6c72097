/**
 * Relay messages, type numbers 62..69 (60..61 are the reachability check).
 *
 * RELAY_RESERVE / RELAY_RESERVED are an ordinary request and response on
 * the session. A circuit has a stream of its own on each leg: the dialer
 * opens a stream to the relay whose first message is RELAY_CONNECT; the
 * relay opens a stream to the target whose first message is
 * RELAY_INCOMING, answers the dialer RELAY_STATUS, and from then on both
 * streams carry only RELAY_DATA, forwarded unread.
 */
import { f } from '../wire/schema.js';
import { defineMessage } from '../wire/messages.js';

/** Largest RELAY_DATA payload: one Noise transport message. */
export const MAX_RELAY_DATA_BYTES = 65_535;

/** Asks the receiver to relay for the sender: dialers can then reach the sender through it. Renewed before `ttlMs` runs out. */
export const RELAY_RESERVE = defineMessage(62, 'RELAY_RESERVE', {});
/** Response to RELAY_RESERVE: how long the reservation lasts, and the relay's per-circuit limits. */
export const RELAY_RESERVED = defineMessage(63, 'RELAY_RESERVED', {
  ttlMs: f.uint(),
  bytesPerSecond: f.uint(),
  maxBytes: f.uint(),
  maxDurationMs: f.uint(),
}, { response: true });
/** First message on a stream a dialer opens to a relay: connect me to `target` (a node ID). */
export const RELAY_CONNECT = defineMessage(64, 'RELAY_CONNECT', { target: f.bytes(32, 32) });
/**
 * First message on a stream a relay opens to a reserved node: a dialer wants
 * to connect. `from` (its node ID) and `h` (the host its packets came from)
 * are as the relay saw them: the node ID that counts is the one the Noise
 * handshake proves; `h` serves only as the dialer's host for the DHT contact.
 */
export const RELAY_INCOMING = defineMessage(65, 'RELAY_INCOMING', { from: f.bytes(32, 32), h: f.str(1, 255) });
/** The relay's answer to RELAY_CONNECT: the circuit is open, or refused with `code`. */
export const RELAY_STATUS = defineMessage(66, 'RELAY_STATUS', {
  ok: f.bool(),
  code: f.opt(f.str(1, 64)),
  message: f.opt(f.str(0, 1024)),
});
/** Opaque bytes of a circuit (the ends' Noise messages). */
export const RELAY_DATA = defineMessage(67, 'RELAY_DATA', { b: f.bytes(1, MAX_RELAY_DATA_BYTES) });
/**
 * Sent over a relayed connection by a node that became reachable: dial me at
 * this address instead. The receiver dials it expecting the sender's node ID;
 * the direct connection then replaces the relayed one in both pools.
 */
export const RELAY_DIRECT = defineMessage(68, 'RELAY_DIRECT', { h: f.str(1, 255), p: f.uint(65535) });
