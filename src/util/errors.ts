/**
 * Every error Macula raises is a MaculaError with a stable `code` that callers
 * and scripts can match on. One subclass per condition a caller can act on;
 * each subclass fixes its code and, where it can, a default message; messages
 * are sentences that say what happened and what to do about it. Subclasses
 * live in this module or in the errors module of their component
 * (`rpc/errors.ts`, `dht/errors.ts`, …); nothing else constructs a
 * MaculaError with a raw code.
 *
 * On the wire an error is an ERROR message `{ code, message }`: `toWire()`
 * and `fromWire()` below are the only conversions, with one code rule.
 */
export class MaculaError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The code rule of the wire: upper-case letters, digits and `_`, at most 64 characters. */
const WIRE_CODE = /^[A-Z0-9_]{1,64}$/;
/** Longest message sent in an ERROR (the schema's limit). */
export const MAX_WIRE_ERROR_MESSAGE = 1024;

/** An error as it travels in an ERROR message. */
export interface WireError {
  code: string;
  message: string;
}

/**
 * What an ERROR answer says about a thrown value: its code if it is a
 * clean one (else MACULA_ERR_HANDLER), its message, never its stack.
 */
export function toWire(err: unknown): WireError {
  const e = err as { code?: unknown; message?: unknown } | null | undefined;
  const code = typeof e?.code === 'string' && WIRE_CODE.test(e.code) ? e.code : 'MACULA_ERR_HANDLER';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return { code, message: message.slice(0, MAX_WIRE_ERROR_MESSAGE) };
}

/** The error a received ERROR answer stands for. */
export function fromWire(wire: WireError): RemoteError {
  return new RemoteError(wire.code, wire.message);
}

/**
 * The other side answered with an error: `code` and `message` are the ones
 * it sent. RPC (`RemoteCallError`) and DHT (`DhtRemoteError`) failures
 * extend it, so one failure is one class whichever path it came by.
 */
export class RemoteError extends MaculaError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(WIRE_CODE.test(code) ? code : 'MACULA_ERR_HANDLER', message, options);
  }
}

/** A result (of a handler or a served command) that cannot be sent back. */
export class BadResultError extends MaculaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MACULA_ERR_BAD_RESULT', message, options);
  }
}

/** A command run for a served procedure failed or could not be started. */
export class CommandFailedError extends MaculaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MACULA_ERR_COMMAND_FAILED', message, options);
  }
}

/** Code that uses a component against its contract (a bug in the caller, not a condition of the mesh). */
export class MisuseError extends MaculaError {
  constructor(message: string) {
    super('MACULA_ERR_MISUSE', message);
  }
}

/** Invalid option, flag or argument given by the user or the embedding code. */
export class ConfigError extends MaculaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MACULA_ERR_CONFIG', message, options);
  }
}

/** The node's key file cannot be read or parsed. Never silently replaced. */
export class IdentityError extends MaculaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MACULA_ERR_IDENTITY', message, options);
  }
}

/**
 * Kinds of protocol violation; each is counted separately in the metrics
 * (`macula_protocol_errors_total{kind}`).
 */
export type ProtocolErrorKind =
  | 'frame_too_large'
  | 'truncated_frame'
  | 'bad_cbor'
  | 'bad_envelope'
  | 'bad_version'
  | 'unknown_type'
  | 'invalid_message'
  | 'unexpected_message';

/** A peer sent bytes that do not follow the wire protocol. */
export class ProtocolError extends MaculaError {
  readonly kind: ProtocolErrorKind;

  constructor(kind: ProtocolErrorKind, message: string, options?: { cause?: unknown }) {
    super('MACULA_ERR_PROTOCOL', message, options);
    this.kind = kind;
  }
}

/** A frame (or an outgoing message) is larger than the configured maximum. */
export class FrameTooLargeError extends ProtocolError {
  readonly size: number;
  readonly limit: number;

  constructor(size: number, limit: number) {
    super(
      'frame_too_large',
      `frame of ${size} bytes exceeds the limit of ${limit} bytes; send smaller messages or raise maxFrameSize on both nodes`,
    );
    this.size = size;
    this.limit = limit;
  }
}

/** A peer said HELLO in a realm this node does not serve. */
export class RealmMismatchError extends MaculaError {
  constructor(realm: string) {
    // Names only what the peer said: a refusal must not tell a stranger which realm this node serves.
    super('MACULA_ERR_REALM', `this node does not serve realm "${realm}"; use the same --realm on every node`);
  }
}

/** A mesh node asked for what only light clients may (a gateway request, a web session). */
export class NotAClientError extends MaculaError {
  constructor(message: string) {
    super('MACULA_ERR_NOT_A_CLIENT', message);
  }
}

/** Generic transport failure (socket, stream or connection level). */
export class TransportError extends MaculaError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'MACULA_ERR_TRANSPORT', message, options);
  }
}

/** A dial failed: nobody answered at the address, or the handshake failed. */
export class DialError extends TransportError {
  readonly address: string;

  constructor(address: string, message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'MACULA_ERR_DIAL' });
    this.address = address;
  }
}

/** The node at the dialed address is not the node we expected to reach. */
export class PeerIdMismatchError extends TransportError {
  readonly expected: string;
  readonly actual: string;

  constructor(address: string, expected: string, actual: string) {
    super(
      `the node at ${address} has ID ${actual.slice(0, 16)}…, expected ${expected.slice(0, 16)}…; ` +
        'the address may have been reused by another node: look the node up again',
      { code: 'MACULA_ERR_PEER_ID_MISMATCH' },
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/** The connection was closed (locally or by the peer) while in use. */
export class ConnectionClosedError extends TransportError {
  constructor(message = 'the connection is closed', options?: { cause?: unknown }) {
    super(message, { ...options, code: 'MACULA_ERR_CONNECTION_CLOSED' });
  }
}

/** An operation did not complete within its deadline. */
export class TimeoutError extends MaculaError {
  readonly timeoutMs: number;

  /** `what` names the operation ("X timed out after N ms"); `message` replaces that sentence. */
  constructor(what: string, timeoutMs: number, options?: { cause?: unknown; message?: string }) {
    super('MACULA_ERR_TIMEOUT', options?.message ?? `${what} timed out after ${timeoutMs} ms`, options);
    this.timeoutMs = timeoutMs;
  }
}

/** A bounded queue or limit is full and the caller asked not to wait. */
export class QueueFullError extends MaculaError {
  readonly limit: number;

  constructor(what: string, limit: number) {
    super('MACULA_ERR_QUEUE_FULL', `${what} is full (limit ${limit}); slow down or retry later`);
    this.limit = limit;
  }
}

/** A limit (connections, clients, in-flight calls) refuses more work. */
export class LimitExceededError extends MaculaError {
  readonly limit: number;

  constructor(what: string, limit: number, hint: string) {
    super('MACULA_ERR_LIMIT', `${what}: limit of ${limit} reached; ${hint}`);
    this.limit = limit;
  }
}

/**
 * The component was stopped (or is not running yet); no new work is
 * accepted. The message is a whole sentence: "pub/sub is stopped".
 */
export class StoppedError extends MaculaError {
  constructor(message = 'this component is stopped; no new work is accepted') {
    super('MACULA_ERR_STOPPED', message);
  }

  /** "<what> is stopped". */
  static of(what: string): StoppedError {
    return new StoppedError(`${what} is stopped`);
  }
}

/** The peer has too much in flight on this connection already; retry later. */
export class BusyError extends MaculaError {
  constructor(message: string) {
    super('MACULA_ERR_BUSY', message);
  }
}
