/**
 * Errors of RPC calls, one class per condition a caller can act on. Codes
 * are stable; `RemoteCallError.code` is whatever the remote handler's error
 * carried (e.g. an application code), or MACULA_ERR_HANDLER.
 */
import { shortId } from '../identity/identity.js';
import { MaculaError, RemoteError, TimeoutError } from '../util/errors.js';

export type FailureKind = 'timeout' | 'unavailable' | 'busy' | 'no_such_procedure';

/** One failed attempt of a call, for error messages and diagnostics. */
export interface AttemptFailure {
  nodeId: string;
  kind: FailureKind;
  code: string;
  message: string;
}

function describeAttempts(attempts: readonly AttemptFailure[]): string {
  if (attempts.length === 0) return '';
  const parts = attempts.map((a) => `${shortId(a.nodeId)}: ${a.kind} (${a.code})`);
  return ` [${attempts.length} attempt${attempts.length === 1 ? '' : 's'}: ${parts.join('; ')}]`;
}

/** A procedure name that cannot be registered or called. */
export class InvalidProcedureError extends MaculaError {
  constructor(procedure: unknown, maxLength: number) {
    const shown = typeof procedure === 'string' ? JSON.stringify(procedure.slice(0, 40)) : `a ${typeof procedure}`;
    super('MACULA_ERR_INVALID_NAME', `invalid procedure name ${shown}: use 1..${maxLength} printable characters (no control or invisible formatting characters)`);
  }
}

/** The call's arguments cannot be sent (not CBOR-encodable, or too large). */
export class BadArgumentsError extends MaculaError {
  readonly procedure: string;

  constructor(procedure: string, detail: string, options?: { cause?: unknown }) {
    super('MACULA_ERR_BAD_ARGS', `arguments of "${procedure}" ${detail}`, options);
    this.procedure = procedure;
  }
}

/** No node of the realm provides the procedure. */
export class NoProvidersError extends MaculaError {
  readonly procedure: string;
  readonly realm: string;

  constructor(procedure: string, realm: string) {
    super('MACULA_ERR_NO_PROVIDERS', `no node provides "${procedure}" in realm ${realm}; is a server running and registered?`);
    this.procedure = procedure;
    this.realm = realm;
  }
}

/** The node asked does not serve the procedure (its registration is gone or the caller's view is stale). */
export class NoSuchProcedureError extends MaculaError {
  readonly procedure: string;
  readonly attempts: readonly AttemptFailure[];

  constructor(procedure: string, where: string, attempts: readonly AttemptFailure[] = []) {
    super(
      'MACULA_ERR_NO_SUCH_PROCEDURE',
      `${where} does not provide procedure "${procedure}"; the caller's registry view may be stale (it catches up within the registration TTL plus the cache TTL)${describeAttempts(attempts)}`,
    );
    this.procedure = procedure;
    this.attempts = attempts;
  }
}

/**
 * The handler failed; `code` and `message` are the ones it reported (never
 * its stack). The same class whether the caller is embedded or a light
 * client calling through a gateway.
 */
export class RemoteCallError extends RemoteError {
  readonly procedure: string;
  /** Node whose handler failed (hex). */
  readonly nodeId: string;

  constructor(code: string, message: string, procedure: string, nodeId: string) {
    super(code, message);
    this.procedure = procedure;
    this.nodeId = nodeId;
  }
}

/** The call did not complete within its timeout (all attempts included). */
export class RpcTimeoutError extends TimeoutError {
  readonly procedure: string;
  readonly attempts: readonly AttemptFailure[];

  constructor(procedure: string, timeoutMs: number, attempts: readonly AttemptFailure[]) {
    super(`call of "${procedure}"`, timeoutMs);
    this.message += `${describeAttempts(attempts)}; raise the timeout if the procedure is slow, or check that its providers are reachable`;
    this.procedure = procedure;
    this.attempts = attempts;
  }
}

/** This node is listed as a provider of the procedure but runs no RPC server. */
export class NoLocalServerError extends MaculaError {
  constructor(message = 'this node lists itself as a provider but has no RPC server to run the call') {
    super('MACULA_ERR_UNAVAILABLE', message);
  }
}

/** Every provider tried was unreachable (connection failed, refused or closed). */
export class RpcUnavailableError extends MaculaError {
  readonly procedure: string;
  readonly attempts: readonly AttemptFailure[];

  constructor(procedure: string, attempts: readonly AttemptFailure[], options?: { cause?: unknown }) {
    super('MACULA_ERR_UNAVAILABLE', `no provider of "${procedure}" could be reached${describeAttempts(attempts)}; retry later`, options);
    this.procedure = procedure;
    this.attempts = attempts;
  }
}

/** Every provider tried refused the call because it had too many calls in flight. */
export class TooManyInFlightError extends MaculaError {
  readonly procedure: string;
  readonly attempts: readonly AttemptFailure[];

  constructor(procedure: string, attempts: readonly AttemptFailure[]) {
    super('MACULA_ERR_BUSY', `every provider of "${procedure}" tried is busy (too many calls in flight)${describeAttempts(attempts)}; slow down or retry later`);
    this.procedure = procedure;
    this.attempts = attempts;
  }
}
