/**
 * Provider selection for one attempt of a call. O(1) in the common case:
 * a scan only skips providers that already failed in this call or failed
 * recently in other calls ("suspects", tried only when nothing else is left).
 */
import type { Provider } from '../registry/types.js';
import type { Selection } from './types.js';

/** Per-procedure round-robin position. */
export interface RoundRobinState {
  next: number;
}

export type SuspectCheck = (nodeId: string) => boolean;

function usable(p: Provider, failed: readonly string[]): boolean {
  return failed.length === 0 || !failed.includes(p.nodeId);
}

/** Index of the first usable provider from `start` on, preferring non-suspects; -1 if none. */
function scan(providers: readonly Provider[], start: number, failed: readonly string[], suspect: SuspectCheck | undefined): number {
  const n = providers.length;
  let fallback = -1;
  for (let k = 0; k < n; k++) {
    const i = (start + k) % n;
    const p = providers[i]!;
    if (!usable(p, failed)) continue;
    if (suspect !== undefined && suspect(p.nodeId)) {
      if (fallback < 0) fallback = i;
      continue;
    }
    return i;
  }
  return fallback;
}

/**
 * Picks the provider for the next attempt, never one in `failed`.
 * `providers` lists this node first when it is a provider (the registry's order).
 */
export function selectProvider(
  providers: readonly Provider[],
  selection: Selection,
  state: RoundRobinState,
  failed: readonly string[],
  suspect?: SuspectCheck,
): Provider | undefined {
  const n = providers.length;
  if (n === 0) return undefined;
  if (selection === 'local-first') {
    const first = providers[0]!;
    if (first.local && usable(first, failed)) return first;
  }
  if (selection === 'random') {
    const i = scan(providers, Math.floor(Math.random() * n), failed, suspect);
    return i < 0 ? undefined : providers[i];
  }
  const i = scan(providers, state.next % n, failed, suspect);
  if (i < 0) return undefined;
  state.next = (i + 1) % n;
  return providers[i];
}
