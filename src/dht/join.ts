/**
 * The dialing half of joining a mesh: reach the bootstrap addresses and put
 * the nodes found into the routing table. The Dht then looks up its own ID
 * and refreshes its buckets.
 */
import type { PeerAddress } from '../transport/types.js';
import { formatAddress } from '../transport/types.js';
import { bytesEqual } from './id.js';
import type { DhtLogger, DhtNetwork } from './network.js';
import type { RoutingTable } from './routing-table.js';

export interface DialBootstrapDeps {
  selfId: Uint8Array;
  network: DhtNetwork;
  table: RoutingTable;
  log: DhtLogger;
  connectTimeoutMs: number;
}

/** Dials every address in parallel; each failure is a warning naming the address. */
export async function dialBootstrap(deps: DialBootstrapDeps, addresses: readonly PeerAddress[]): Promise<{ reached: number; unreachable: number }> {
  const results = await Promise.allSettled(addresses.map((a) => deps.network.connect(a, deps.connectTimeoutMs)));
  let reached = 0;
  let unreachable = 0;
  results.forEach((r, i) => {
    if (r.status === 'rejected') {
      unreachable++;
      deps.log.warn(`bootstrap node ${formatAddress(addresses[i]!)} is unreachable: ${(r.reason as Error)?.message ?? r.reason}`);
    } else if (!bytesEqual(r.value.id, deps.selfId)) {
      // Our own address in the list (one list shared by every node) is not an error.
      deps.table.add(r.value);
      reached++;
    }
  });
  return { reached, unreachable };
}

/** Exponential backoff with ±20 % jitter, so nodes started together do not retry in lockstep. */
export function backoffDelay(attempt: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, minMs * 2 ** attempt) * (0.8 + Math.random() * 0.4);
}
