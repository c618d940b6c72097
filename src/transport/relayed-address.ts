/**
 * A node behind a NAT is reached through relays. Its address is written in
 * the host field every contact and record already carries:
 *
 *     host = "relay~10.0.0.1:9443~10.0.0.2:9443", port = 9443 (the first relay's)
 *
 * so DHT contacts, registry and subscription records, and everything that
 * shows an address (`macula lookup`) carry the relays without a format
 * change, and the contact's port stays a valid listen port. Dialing such an
 * address goes through one of the relays (src/relay/).
 */
import { formatAddress, parseAddress, type PeerAddress } from './types.js';

/** Also known to formatAddress/parseAddress (types.ts), which write a relayed address as its host alone. */
const PREFIX = 'relay~';
/** A contact's host is at most 255 characters: three IPv4 relays fit with room to spare. */
export const MAX_RELAYS_IN_ADDRESS = 3;

export function isRelayedHost(host: string): boolean {
  return host.startsWith(PREFIX);
}

/** The address that names `relays` (at most MAX_RELAYS_IN_ADDRESS, in order). */
export function relayedAddress(relays: readonly PeerAddress[]): PeerAddress {
  if (relays.length === 0) throw new RangeError('a relayed address names at least one relay');
  const used = relays.slice(0, MAX_RELAYS_IN_ADDRESS);
  return { host: PREFIX + used.map(formatAddress).join('~'), port: used[0]!.port };
}

/** The relays of a relayed host, or undefined when the host is not one (or is malformed). */
export function relaysOf(host: string): PeerAddress[] | undefined {
  if (!isRelayedHost(host)) return undefined;
  const parts = host.slice(PREFIX.length).split('~');
  if (parts.length === 0 || parts.length > MAX_RELAYS_IN_ADDRESS) return undefined;
  try {
    const out = parts.map((p) => parseAddress(p));
    return out.every((a) => a.port > 0) ? out : undefined;
  } catch {
    return undefined;
  }
}
