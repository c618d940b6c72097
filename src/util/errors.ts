/**
 * Every error Macula raises is a MaculaError with a stable `code` that callers
 * and scripts can match on. One subclass per condition a caller can act on;
 * messages say what happened and what to do about it.
 */
export class MaculaError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
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

  constructor(what: string, timeoutMs: number, options?: { cause?: unknown }) {
    super('MACULA_ERR_TIMEOUT', `${what} timed out after ${timeoutMs} ms`, options);
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

/** The component was stopped; no new work is accepted. */
export class StoppedError extends MaculaError {
  constructor(what: string) {
    super('MACULA_ERR_STOPPED', `${what} is stopped`);
  }
}
