/**
 * Which light clients the gateway admits: at most `maxClients` in all, and
 * at most `maxClientsPerAddress` from one source, so that one address (one
 * machine, one attacker) cannot take every slot and lock out the others.
 *
 * A source is the client's IP address as the QUIC handshake saw it: an
 * IPv4 address, or the /64 prefix of an IPv6 address (one IPv6 host
 * usually holds a whole /64, so counting single IPv6 addresses would bound
 * nothing). IPv4-mapped IPv6 addresses count as their IPv4 address.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type AdmissionRefusal = 'max_clients' | 'max_clients_per_address';

/** Every refusal reason, in the order metrics show them. */
export const ADMISSION_REFUSALS: readonly AdmissionRefusal[] = ['max_clients', 'max_clients_per_address'];

export interface AdmissionStats {
  /** Clients admitted and not yet released. */
  clients: number;
  /** Distinct sources (see sourceOf) with at least one client. */
  sources: number;
  /** Clients of the source holding the most. */
  largestSourceClients: number;
  /** Refusals since start, by the limit that was hit. */
  refusedByReason: Record<AdmissionRefusal, number>;
}

/** The source a client's host counts against: IPv4 as is, IPv6 as its /64 prefix. */
export function sourceOf(host: string): string {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  if (!isIPv6(bare)) return bare;
  const noZone = bare.split('%', 1)[0]!;
  const [head, tail] = noZone.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  let groups = left;
  if (tail !== undefined) {
    const right = tail === '' ? [] : tail.split(':');
    // An embedded IPv4 tail (a.b.c.d) is two groups; it only ever sits in the last 32 bits, past the /64.
    const width = right.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
    groups = [...left, ...new Array<string>(Math.max(0, 8 - left.length - width)).fill('0'), ...right];
  }
  return `${groups
    .slice(0, 4)
    .map((g) => (Number.parseInt(g, 16) || 0).toString(16))
    .join(':')}::/64`;
}

export class ClientAdmission {
  readonly maxClients: number;
  readonly maxClientsPerAddress: number;
  readonly #perSource = new Map<string, number>();
  #clients = 0;
  readonly #refused: Record<AdmissionRefusal, number> = { max_clients: 0, max_clients_per_address: 0 };

  constructor(maxClients: number, maxClientsPerAddress: number) {
    this.maxClients = maxClients;
    this.maxClientsPerAddress = maxClientsPerAddress;
  }

  /**
   * The limit a new client from `host` is up against now, if any. The
   * per-address share comes first (for a client of a crowded source it is
   * the limit that matters), unless it is no smaller than maxClients.
   */
  refusalFor(host: string): AdmissionRefusal | undefined {
    const overShare = (this.#perSource.get(sourceOf(host)) ?? 0) >= this.maxClientsPerAddress;
    if (overShare && this.maxClientsPerAddress < this.maxClients) return 'max_clients_per_address';
    return overShare || this.#clients >= this.maxClients ? 'max_clients' : undefined;
  }

  /** Takes a slot for a client from `host`, or says which limit refuses it (and counts the refusal). */
  admit(host: string): AdmissionRefusal | undefined {
    const refusal = this.refusalFor(host);
    if (refusal) {
      this.#refused[refusal]++;
      return refusal;
    }
    const source = sourceOf(host);
    this.#perSource.set(source, (this.#perSource.get(source) ?? 0) + 1);
    this.#clients++;
    return undefined;
  }

  /** Gives back the slot of a client admitted from `host`. */
  release(host: string): void {
    const source = sourceOf(host);
    const held = this.#perSource.get(source);
    if (held === undefined) return;
    if (held <= 1) this.#perSource.delete(source);
    else this.#perSource.set(source, held - 1);
    this.#clients--;
  }

  stats(): AdmissionStats {
    let largest = 0;
    for (const n of this.#perSource.values()) if (n > largest) largest = n;
    return { clients: this.#clients, sources: this.#perSource.size, largestSourceClients: largest, refusedByReason: { ...this.#refused } };
  }
}
