/**
 * Decides what a failed attempt means for the call: try another provider
 * (the provider was unreachable, slow, busy, or does not serve the
 * procedure) or stop (the handler ran and failed: running it elsewhere
 * would most likely fail the same way, and may repeat its side effects).
 */
import { shortId } from '../identity/identity.js';
import { RemoteError } from '../session/peer-session.js';
import { ConfigError, type MaculaError } from '../util/errors.js';
import {
  BadArgumentsError,
  InvalidProcedureError,
  NoProvidersError,
  NoSuchProcedureError,
  RemoteCallError,
  RpcTimeoutError,
  RpcUnavailableError,
  TooManyInFlightError,
  type AttemptFailure,
  type FailureKind,
} from './errors.js';
import type { CallOutcome } from './types.js';

/** Codes of ERROR answers that come from the remote node's plumbing, not from the handler. */
const REMOTE_TRANSPORT_CODES: ReadonlyMap<string, FailureKind> = new Map([
  ['MACULA_ERR_BUSY', 'busy'],
  ['MACULA_ERR_NO_SUCH_PROCEDURE', 'no_such_procedure'],
  // The node does not run RPC at all, is in another realm, or is shutting down.
  ['MACULA_ERR_UNSUPPORTED', 'unavailable'],
  ['MACULA_ERR_REALM', 'unavailable'],
  ['MACULA_ERR_STOPPED', 'unavailable'],
  ['MACULA_ERR_LIMIT', 'unavailable'],
]);

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** 'remote' = a handler error to surface as is; anything else = fail over to another provider. */
export function classifyFailure(err: unknown): FailureKind | 'remote' {
  if (err instanceof RemoteCallError) return 'remote';
  if (err instanceof NoSuchProcedureError) return 'no_such_procedure';
  const code = codeOf(err);
  if (err instanceof RemoteError) return (code && REMOTE_TRANSPORT_CODES.get(code)) || 'remote';
  // Raised on this side: our request timer, our send queue, dial and connection failures.
  if (code === 'MACULA_ERR_TIMEOUT') return 'timeout';
  if (code === 'MACULA_ERR_QUEUE_FULL') return 'busy';
  return 'unavailable';
}

export function failureCode(err: unknown): string {
  return codeOf(err) ?? 'MACULA_ERR_UNKNOWN';
}

export function failureMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The outcome label of a failed call (for the call counters). */
export function outcomeOf(err: unknown): CallOutcome {
  if (err instanceof RemoteCallError) return 'remote_error';
  if (err instanceof RpcTimeoutError) return 'timeout';
  if (err instanceof NoProvidersError) return 'no_providers';
  if (err instanceof TooManyInFlightError) return 'busy';
  if (err instanceof BadArgumentsError || err instanceof InvalidProcedureError || err instanceof ConfigError) return 'bad_args';
  return 'unavailable';
}

/** A handler error as the caller sees it, whichever path (network or in-process) it came by. */
export function toRemoteCallError(err: unknown, procedure: string, nodeId: string): RemoteCallError {
  if (err instanceof RemoteCallError || err instanceof RemoteError) return new RemoteCallError(err.code, err.message, procedure, nodeId);
  return new RemoteCallError(failureCode(err), failureMessage(err), procedure, nodeId);
}

/** The error of a call whose attempts all failed. */
export function finalError(procedure: string, timeoutMs: number, failures: AttemptFailure[], outOfTime: boolean, cause: unknown): MaculaError {
  if (failures.length === 0) return new RpcTimeoutError(procedure, timeoutMs, failures);
  if (failures.every((f) => f.kind === 'busy')) return new TooManyInFlightError(procedure, failures);
  if (failures.every((f) => f.kind === 'no_such_procedure')) {
    const where = failures.length === 1 ? `node ${shortId(failures[0]!.nodeId)}` : `each of the ${failures.length} nodes tried`;
    return new NoSuchProcedureError(procedure, where, failures);
  }
  if (outOfTime || failures.some((f) => f.kind === 'timeout')) return new RpcTimeoutError(procedure, timeoutMs, failures);
  return new RpcUnavailableError(procedure, failures, { cause });
}
