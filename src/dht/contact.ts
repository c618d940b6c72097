/**
 * A DHT contact: a node ID plus the address the node listens on. On the wire
 * a contact is `{ id, h, p }` (short keys: contacts are repeated up to k
 * times in every NODES/VALUE response).
 */
import type { PeerAddress } from '../transport/types.js';
import { isId } from './id.js';

export interface Contact extends PeerAddress {
  /** 32-byte node ID (SHA-256 of the node's Ed25519 public key). */
  id: Uint8Array;
}

export interface WireContact {
  id: Uint8Array;
  h: string;
  p: number;
}

export const MAX_HOST_LENGTH = 255;

export function toWireContact(c: Contact): WireContact {
  return { id: c.id, h: c.host, p: c.port };
}

/** True when `c` names a reachable DHT member: 32-byte ID, a host, a listening port (never 0). */
export function isValidContact(c: Contact): boolean {
  return (
    isId(c.id) &&
    typeof c.host === 'string' &&
    c.host.length > 0 &&
    c.host.length <= MAX_HOST_LENGTH &&
    Number.isInteger(c.port) &&
    c.port > 0 &&
    c.port <= 65535
  );
}

/**
 * Converts a contact received from a peer, or returns undefined when it is
 * malformed. Responses are schema-checked by the messenger already; this
 * check stays because lookups must not trust the network layer to have done
 * it (and an in-process network may not).
 */
export function fromWireContact(w: unknown): Contact | undefined {
  if (typeof w !== 'object' || w === null) return undefined;
  const { id, h, p } = w as Partial<WireContact>;
  const c = { id, host: h, port: p } as Contact;
  return isValidContact(c) ? c : undefined;
}
