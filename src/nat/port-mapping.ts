/**
 * Port mapping where the router offers it (`--port-mapping`, off by
 * default): asks the router, by UPnP IGD and then NAT-PMP, through
 * @achingbrain/nat-port-mapper, to forward a public UDP port to the port
 * this node listens on. The mapped address becomes the node's announced
 * address and goes through the reachability check like any other: a router
 * that accepts the mapping but does not forward leaves the node `private`.
 * The mapping is renewed by the library and removed by stop(). The library
 * as released removed nothing (its UPnP deletion names no protocol, its
 * NAT-PMP one is never sent) and asked NAT-PMP for a 41-day lease:
 * scripts/patch-dependencies.mjs fixes it on install.
 */
import { readFile } from 'node:fs/promises';
import type { PeerAddress } from '../transport/types.js';

export type PortMappingState = 'off' | 'searching' | 'mapped' | 'failed';

export interface PortMappingStats {
  state: PortMappingState;
  /** The mapped public address, once mapped. */
  external: string | undefined;
  /** How: `upnp` or `pmp`. */
  method: string | undefined;
  /** Why it failed, when it did. */
  error: string | undefined;
  attempts: number;
}

/** What the mapper needs of a router (the library's Gateway). */
export interface MappingGateway {
  map(internalPort: number, internalHost: string, options: { protocol: 'udp'; externalPort: number; description: string; autoRefresh: boolean; signal?: AbortSignal }): Promise<{ externalHost: string; externalPort: number }>;
  stop(options: { signal: AbortSignal }): Promise<void>;
}

/** Finds the router: UPnP first, then NAT-PMP at the default gateway. Replaced in unit tests. */
export type GatewayFinder = (signal: AbortSignal) => Promise<{ gateway: MappingGateway; method: string } | undefined>;

export const DEFAULT_PORT_MAPPING_TIMEOUT_MS = 10_000;
/**
 * How long the UPnP search (SSDP) may take of that: a router on the LAN
 * answers within a second, and NAT-PMP must be left time to be tried.
 */
export const UPNP_SEARCH_MS = 3000;
/** How long stop() waits for the router to remove the mapping (one request, on the LAN). */
export const UNMAP_TIMEOUT_MS = 3000;

export class PortMapper {
  /** Called once a mapping exists (the announced address changed). */
  onMapped: ((external: PeerAddress) => void) | undefined;
  readonly #find: GatewayFinder;
  readonly #timeoutMs: number;
  #gateway: MappingGateway | undefined;
  #stats: PortMappingStats = { state: 'off', external: undefined, method: undefined, error: undefined, attempts: 0 };
  #external: PeerAddress | undefined;

  constructor(options: { find?: GatewayFinder; timeoutMs?: number } = {}) {
    this.#find = options.find ?? findGateway;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_PORT_MAPPING_TIMEOUT_MS;
  }

  /** The mapped public address, once mapped. */
  get external(): PeerAddress | undefined {
    return this.#external;
  }

  /** Maps the public port of the same number to `internal` (best effort: failures are reported in stats()). */
  async start(internal: PeerAddress): Promise<void> {
    this.#stats = { ...this.#stats, state: 'searching', attempts: this.#stats.attempts + 1 };
    const signal = AbortSignal.timeout(this.#timeoutMs);
    try {
      const found = await this.#find(signal);
      if (!found) throw new Error('no UPnP or NAT-PMP router answered');
      this.#gateway = found.gateway;
      const m = await found.gateway.map(internal.port, internal.host, { protocol: 'udp', externalPort: internal.port, description: 'macula', autoRefresh: true, signal });
      this.#external = { host: m.externalHost, port: m.externalPort };
      this.#stats = { ...this.#stats, state: 'mapped', external: `${m.externalHost}:${m.externalPort}`, method: found.method, error: undefined };
      this.onMapped?.(this.#external);
    } catch (err) {
      this.#stats = { ...this.#stats, state: 'failed', error: (err as Error).message };
    }
  }

  async stop(): Promise<void> {
    const gateway = this.#gateway;
    this.#gateway = undefined;
    this.#external = undefined;
    await gateway?.stop({ signal: AbortSignal.timeout(UNMAP_TIMEOUT_MS) }).catch(() => undefined);
  }

  stats(): PortMappingStats {
    return { ...this.#stats };
  }
}

async function findGateway(signal: AbortSignal): Promise<{ gateway: MappingGateway; method: string } | undefined> {
  const { upnpNat, pmpNat } = await import('@achingbrain/nat-port-mapper');
  try {
    const search = AbortSignal.any([signal, AbortSignal.timeout(UPNP_SEARCH_MS)]);
    for await (const gateway of upnpNat().findGateways({ signal: search })) return { gateway: gateway as unknown as MappingGateway, method: 'upnp' };
  } catch {
    // no UPnP answer within UPNP_SEARCH_MS: try NAT-PMP
  }
  const router = await defaultGateway();
  return router ? { gateway: pmpNat(router) as unknown as MappingGateway, method: 'pmp' } : undefined;
}

/** The IPv4 default gateway from /proc/net/route (Linux), or undefined. */
async function defaultGateway(): Promise<string | undefined> {
  const text = await readFile('/proc/net/route', 'utf8').catch(() => '');
  for (const line of text.split('\n').slice(1)) {
    const [, dest, gw] = line.trim().split(/\s+/);
    if (dest === '00000000' && gw && gw !== '00000000') {
      const n = parseInt(gw, 16);
      return [n & 255, (n >> 8) & 255, (n >> 16) & 255, (n >>> 24) & 255].join('.');
    }
  }
  return undefined;
}
