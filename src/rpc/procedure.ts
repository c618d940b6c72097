/**
 * Procedure names and what a procedure's registration says about it.
 *
 * A procedure is advertised in the registry as the service `rpc:<procedure>`;
 * registered names are therefore 4 characters shorter than service names.
 */
import { isValidServiceName, MAX_SERVICE_NAME_LENGTH } from '../registry/service-name.js';
import type { Provider } from '../registry/types.js';
import { InvalidProcedureError } from './errors.js';

export const SERVICE_PREFIX = 'rpc:';
export const MAX_PROCEDURE_LENGTH = MAX_SERVICE_NAME_LENGTH - SERVICE_PREFIX.length;

/** Registration metadata keys the RPC layer reserves. */
export const META_IDEMPOTENT = 'idempotent';
export const META_CACHE_TTL_MS = 'cacheTtlMs';

export function validateProcedure(procedure: unknown): asserts procedure is string {
  if (!isValidServiceName(procedure, MAX_PROCEDURE_LENGTH)) throw new InvalidProcedureError(procedure, MAX_PROCEDURE_LENGTH);
}

export function serviceName(procedure: string): string {
  return SERVICE_PREFIX + procedure;
}

/**
 * How long results of calls to these providers may be cached: 0 unless
 * every provider declares the procedure idempotent with a cache TTL; then
 * the smallest TTL (providers of different versions may disagree).
 */
export function resultCacheTtl(providers: readonly Provider[]): number {
  let ttl = Infinity;
  for (const p of providers) {
    const m = p.metadata;
    const t = m[META_CACHE_TTL_MS];
    if (m[META_IDEMPOTENT] !== true || typeof t !== 'number' || !(t > 0)) return 0;
    if (t < ttl) ttl = t;
  }
  return Number.isFinite(ttl) ? ttl : 0;
}
