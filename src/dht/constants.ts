/**
 * Protocol-level DHT constants. Tunables with defaults live next to the class
 * that uses them (`DEFAULT_*`); these are the few values every node of a mesh
 * must agree on.
 */

/** Node IDs and record keys are SHA-256 digests. */
export { NODE_ID_BYTES as ID_BYTES } from '../identity/identity.js';
import { NODE_ID_BYTES as ID_BYTES } from '../identity/identity.js';
export const ID_BITS = ID_BYTES * 8;

/** Kademlia bucket size and replication factor. */
export const K = 20;
/** Requests in flight per lookup. */
export const ALPHA = 3;

/** Most contacts a NODES/VALUE response may carry on the wire (k may be configured up to this). */
export const MAX_WIRE_CONTACTS = 32;
/** Most records a VALUE response may carry on the wire (the default per-key bound). */
export const MAX_WIRE_RECORDS = 1000;
/** Hard wire limit for one record value; `maxRecordSize` (default 16 KiB) may not exceed it. */
export const MAX_WIRE_VALUE_BYTES = 64 * 1024;
