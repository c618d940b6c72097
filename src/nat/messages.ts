/**
 * NAT messages, type numbers 60..69: the reachability check (DIAL_BACK).
 * The observed address itself travels in HELLO_ACK (`obs`, src/wire/messages.ts).
 */
import { f } from '../wire/schema.js';
import { defineMessage } from '../wire/messages.js';

const observedField = f.obj({ h: f.str(1, 255), p: f.uint(65535) });

/**
 * Asks the receiver to dial the sender back, on a fresh connection, at the
 * host the request came from and `port` (the port the sender listens on).
 * Never another host: a node cannot be made to dial third parties.
 */
export const DIAL_BACK = defineMessage(60, 'DIAL_BACK', { port: f.uint(65535) });
/**
 * Response to DIAL_BACK: whether the dial-back reached the sender (its TLS
 * handshake proved the sender's node ID), and the address the request came
 * from. `code` says why not when `ok` is false.
 */
export const DIAL_BACK_RESULT = defineMessage(61, 'DIAL_BACK_RESULT', {
  ok: f.bool(),
  code: f.opt(f.str(1, 64)),
  obs: observedField,
}, { response: true });
