/**
 * Message envelope and the registry of message types.
 *
 * Every frame body is one CBOR map: `{ v, t, id?, ...fields }` where `v` is
 * the protocol version, `t` the message type and `id` the request id that
 * correlates a response with its request. Each feature module defines its
 * own types with `defineMessage` (type numbers are allocated in ranges, see
 * ARCHITECTURE.md); `validateMessage` checks the envelope and the fields of
 * the type before any other code sees the message.
 */
import { MaculaError, ProtocolError } from '../util/errors.js';
import { checkFields, f, isPlainMap, type Fields, type Infer } from './schema.js';

export const PROTOCOL_VERSION = 1;
export const MAX_REQUEST_ID = 0xffff_ffff;

export interface Message {
  v: number;
  t: number;
  id?: number;
  [field: string]: unknown;
}

export interface MessageDef<F extends Fields = Fields> {
  readonly type: number;
  readonly name: string;
  readonly fields: F;
  /** Responses are matched to a pending request by `id` instead of being dispatched to a handler. */
  readonly response: boolean;
  /** A rule across fields (after each field passed its own check): what is wrong, or undefined. */
  readonly check?: ((msg: Message) => string | undefined) | undefined;
}

/**
 * A validated message of one type, as its handler receives it: the
 * envelope and the fields its definition declares, typed from that
 * definition (see `Infer`), so handlers need no casts.
 */
export type WireMessage<F extends Fields> = Message & Infer<F>;
export type MessageOf<D extends MessageDef> = D extends MessageDef<infer F> ? WireMessage<F> : never;

/**
 * Where handlers are registered, one per message type (the messenger, or a
 * narrow view of it): the handler gets the message typed from `def`, which
 * validation has checked before any handler runs.
 */
export interface HandlerRegistry<Peer, Reply> {
  /**
   * `bytes`: the size of the message's frame body (what keeping the message
   * holds). `onDropped`: told when a one-way message of this type was not
   * handled (it has no answer to carry the error).
   */
  handle<F extends Fields>(def: MessageDef<F>, handler: (msg: WireMessage<F>, peer: Peer, bytes: number) => Reply, options?: { onDropped?: (err: unknown, msg: WireMessage<F>, peer: Peer) => void }): void;
}

/** Whether a validated message is of `def`'s type; narrows it to that type's fields. */
export function isMessage<F extends Fields>(msg: Message, def: MessageDef<F>): msg is WireMessage<F> {
  return msg.t === def.type;
}

const registry = new Map<number, MessageDef>();

export function defineMessage<F extends Fields>(type: number, name: string, fields: F, options: { response?: boolean; check?: (msg: Message) => string | undefined } = {}): MessageDef<F> {
  if (!Number.isInteger(type) || type < 1 || type > 255) throw new RangeError(`message type ${type} outside 1..255`);
  const existing = registry.get(type);
  if (existing) {
    if (existing.name === name) return existing as MessageDef<F>;
    throw new Error(`message type ${type} is already defined as ${existing.name}`);
  }
  const def: MessageDef<F> = { type, name, fields, response: options.response ?? false, check: options.check };
  registry.set(type, def as MessageDef);
  return def;
}

export function messageDef(type: number): MessageDef | undefined {
  return registry.get(type);
}

export function messageName(type: number): string {
  return registry.get(type)?.name ?? `UNKNOWN(${type})`;
}

/** A request arrived for a type that has no handler here (a node, or a light client serving procedures). */
export class UnsupportedMessageError extends MaculaError {
  constructor(type: number, where = 'this node') {
    super('MACULA_ERR_UNSUPPORTED', `${where} does not handle ${messageName(type)} messages`);
  }
}

/**
 * A short description of a decoded value for error messages. Never calls the
 * value's own toString/valueOf: a decoded map may carry such keys with
 * non-function values, and String() would then throw a TypeError.
 */
function describe(value: unknown): string {
  switch (typeof value) {
    case 'number':
    case 'bigint':
    case 'boolean':
      return String(value);
    case 'string':
      return JSON.stringify(value.length > 32 ? `${value.slice(0, 32)}…` : value);
    case 'undefined':
      return '(missing)';
    default:
      if (value === null) return 'null';
      if (Array.isArray(value)) return '(an array)';
      if (value instanceof Uint8Array) return '(bytes)';
      return '(a map)';
  }
}

/** Checks envelope and fields; throws ProtocolError of the matching kind. */
export function validateMessage(value: unknown): Message {
  if (!isPlainMap(value)) {
    throw new ProtocolError('bad_envelope', 'a message must be a CBOR map');
  }
  const msg = value as Message;
  if (msg.v !== PROTOCOL_VERSION) {
    throw new ProtocolError('bad_version', `protocol version ${describe(msg.v)} is not supported (this node speaks ${PROTOCOL_VERSION}); upgrade the older node`);
  }
  if (typeof msg.t !== 'number' || !Number.isInteger(msg.t)) {
    throw new ProtocolError('bad_envelope', 'field "t" (message type) must be an integer');
  }
  if (msg.id !== undefined && (typeof msg.id !== 'number' || !Number.isInteger(msg.id) || msg.id < 0 || msg.id > MAX_REQUEST_ID)) {
    throw new ProtocolError('bad_envelope', `field "id" must be an integer in 0..${MAX_REQUEST_ID}`);
  }
  const def = registry.get(msg.t);
  if (!def) throw new ProtocolError('unknown_type', `unknown message type ${msg.t}`);
  checkFields(msg, def.fields);
  const wrong = def.check?.(msg);
  if (wrong !== undefined) throw new ProtocolError('invalid_message', `${def.name}: ${wrong}`);
  return msg;
}

// ---- Core messages (types 1..9) ---------------------------------------------

/** Largest credential token in a HELLO (a JWT with its permissions). */
export const MAX_CREDENTIAL_TOKEN_BYTES = 8 * 1024;
/** Most tokens in a credential chain: the credential and one delegated issuer's. */
export const MAX_CREDENTIAL_CHAIN = 2;

/**
 * First message on a connection's first stream, in both directions: the
 * peer's realm, its role and the UDP port it listens on (0 for light
 * clients, which are not DHT members). The node ID is not in it: it comes
 * from the verified handshake.
 */
export const HELLO = defineMessage(1, 'HELLO', {
  realm: f.str(1, 64),
  role: f.enum('node', 'client'),
  port: f.uint(65535),
  agent: f.opt(f.str(0, 64)),
  /** The sender's credential chain (issuer first) in a secured realm. */
  cred: f.opt(f.arr(f.str(1, MAX_CREDENTIAL_TOKEN_BYTES), MAX_CREDENTIAL_CHAIN)),
  /** A node behind a NAT: its relayed address (the host of src/transport/relayed-address.ts); anything else is ignored. */
  addr: f.opt(f.str(1, 255)),
});
export const HELLO_ACK = defineMessage(2, 'HELLO_ACK', {
  realm: f.str(1, 64),
  role: f.enum('node', 'client'),
  port: f.uint(65535),
  agent: f.opt(f.str(0, 64)),
  cred: f.opt(f.arr(f.str(1, MAX_CREDENTIAL_TOKEN_BYTES), MAX_CREDENTIAL_CHAIN)),
  addr: f.opt(f.str(1, 255)),
  /** The address the HELLO came from, as the answering side saw it (how a node learns it is behind a NAT). */
  obs: f.opt(f.obj({ h: f.str(1, 255), p: f.uint(65535) })),
}, { response: true });
export const PING = defineMessage(3, 'PING', {});
export const PONG = defineMessage(4, 'PONG', {}, { response: true });
/** Error response to any request: a stable code and a message for humans. */
export const ERROR = defineMessage(5, 'ERROR', {
  code: f.str(1, 64),
  message: f.str(0, 1024),
}, { response: true });
