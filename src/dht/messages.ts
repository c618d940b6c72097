/**
 * DHT wire messages, type numbers 10..19. PING/PONG (3/4) and ERROR (5) are
 * the core types and are reused as they are.
 *
 * Top-level field names are spelled out (they appear once per frame); the
 * fields of contacts and records are one or two letters because they repeat
 * up to k (contacts) or hundreds of times (records) in one response.
 */
import { f } from '../wire/schema.js';
import { defineMessage, ERROR, PING, PONG } from '../wire/messages.js';
import { ID_BYTES, MAX_WIRE_CONTACTS, MAX_WIRE_RECORDS, MAX_WIRE_VALUE_BYTES } from './constants.js';
import { MAX_HOST_LENGTH } from './contact.js';

export { ERROR, PING, PONG };

/** `{ id, h, p }`: node ID, listen host, listen port. */
export const contactField = f.obj({
  id: f.bytes(ID_BYTES, ID_BYTES),
  h: f.str(1, MAX_HOST_LENGTH),
  p: f.uint(65535),
});

/** `{ k, v, pk, s, e, sig }`: key, value, publisher public key, sequence, expiry (unix ms), signature. */
export const recordField = f.obj({
  k: f.bytes(ID_BYTES, ID_BYTES),
  v: f.bytes(0, MAX_WIRE_VALUE_BYTES),
  pk: f.bytes(32, 32),
  s: f.uint(),
  e: f.uint(),
  sig: f.bytes(64, 64),
});

/** Asks for the k contacts the receiver knows closest to `target`. */
export const FIND_NODE = defineMessage(10, 'FIND_NODE', { target: f.bytes(ID_BYTES, ID_BYTES) });
/** Response to FIND_NODE. */
export const NODES = defineMessage(11, 'NODES', { nodes: f.arr(contactField, MAX_WIRE_CONTACTS) }, { response: true });
/** Asks for the records stored under `key`, plus the k closest contacts to it. */
export const FIND_VALUE = defineMessage(12, 'FIND_VALUE', { key: f.bytes(ID_BYTES, ID_BYTES) });
/**
 * Response to FIND_VALUE: the live records the receiver holds (possibly none,
 * bounded by a byte budget) and its closest contacts, so the lookup can go on
 * in the same round trip.
 */
export const VALUE = defineMessage(13, 'VALUE', {
  records: f.arr(recordField, MAX_WIRE_RECORDS),
  nodes: f.arr(contactField, MAX_WIRE_CONTACTS),
}, { response: true });
/** Asks the receiver to store one signed record. */
export const STORE = defineMessage(14, 'STORE', { record: recordField });
/** Response to STORE; `code` is the refusal reason when `ok` is false (see StoreRefusalReason). */
export const STORE_RESULT = defineMessage(15, 'STORE_RESULT', {
  ok: f.bool(),
  code: f.opt(f.str(1, 64)),
}, { response: true });

/** A DHT message as handed to and from the network: type `t` plus fields (the messenger adds `v` and `id`). */
export interface DhtMessage {
  t: number;
  [field: string]: unknown;
}
