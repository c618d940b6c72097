/**
 * CBOR encoding of message bodies (cbor-x). One shared Encoder/Decoder pair:
 * plain maps in and out, no record extension (peers may be other
 * implementations), byte strings as Uint8Array.
 *
 * cbor-x is imported through its `encode`/`decode` entry points, not the
 * package root: in Node the root also loads the native string extractor
 * (cbor-extract), which decodes a body of 140 bytes or more with one native
 * call that costs more than the strings of a message take in JS.
 */
import { Encoder } from 'cbor-x/encode';
import { Decoder } from 'cbor-x/decode';
import { ProtocolError } from '../util/errors.js';
import { PROTOCOL_VERSION, validateMessage, type Message } from './messages.js';

const options = { useRecords: false, mapsAsObjects: true, variableMapSize: true, tagUint8Array: false } as const;
const encoder = new Encoder(options);
const decoder = new Decoder(options);

export function encodeBody(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** Bytes `value` takes in CBOR (the size checks of payloads, arguments, results and metadata). Throws if it is not encodable. */
export function encodedSize(value: unknown): number {
  return encoder.encode(value).length;
}

/** A message's type and fields, without the envelope (`v`, `id`), which framing adds. */
export type MessageFields = { t: number; [field: string]: unknown };

/**
 * A message encoded once, framed any number of times: a publish to many
 * subscriber nodes, a result sent again. Holds the CBOR key/value pairs of
 * its fields; `frameBody()` puts the map header and the envelope around them.
 */
export class EncodedMessage {
  /** @param pairs the CBOR encoding of `count` key/value pairs, `t` among them */
  constructor(
    readonly t: number,
    readonly count: number,
    readonly pairs: Uint8Array,
  ) {}

  /** Bytes of the fields (the body without the envelope's few bytes). */
  get size(): number {
    return this.pairs.length + 1;
  }
}

/**
 * Encodes a message's fields once. `raw` fields are values encoded earlier
 * (`encodeBody`), placed as they are: a payload already encoded to check its
 * size is not encoded again.
 */
export function encodeMessage(msg: MessageFields, raw?: Readonly<Record<string, Uint8Array>>): EncodedMessage {
  let fields: MessageFields = msg;
  if ('v' in msg || 'id' in msg) {
    // A received message sent on: its old envelope is not part of its fields.
    const { v: _v, id: _id, ...rest } = msg;
    fields = rest as MessageFields;
  }
  const map = encoder.encode(fields);
  const [count, headerBytes] = readMapHeader(map);
  if (raw === undefined) return new EncodedMessage(msg.t, count, map.subarray(headerBytes));
  // Once per publish: one buffer for the pairs, the map copied without a
  // view of it, the raw keys' encodings cached (the profile showed the
  // views, Object.entries and Buffer.concat of the general way).
  let size = map.length - headerBytes;
  let extra = 0;
  for (const key in raw) {
    size += encodedKey(key).length + raw[key]!.length;
    extra++;
  }
  const pairs = new Uint8Array(size);
  let off = 0;
  for (let i = headerBytes; i < map.length; i++) pairs[off++] = map[i]!;
  for (const key in raw) {
    const k = encodedKey(key);
    pairs.set(k, off);
    off += k.length;
    pairs.set(raw[key]!, off);
    off += raw[key]!.length;
  }
  return new EncodedMessage(msg.t, count + extra, pairs);
}

/** CBOR of the field names given as raw fields (a handful: `d`, `r`, ...), encoded once each. */
const encodedKeys = new Map<string, Uint8Array>();

function encodedKey(key: string): Uint8Array {
  let k = encodedKeys.get(key);
  if (k === undefined) {
    k = Uint8Array.from(encoder.encode(key));
    if (encodedKeys.size < 64) encodedKeys.set(key, k);
  }
  return k;
}

/** The frame body of a message: its fields (encoded now, or earlier) inside a fresh envelope. The message is not modified. */
export function frameBody(msg: MessageFields | EncodedMessage, id?: number): Uint8Array {
  const frame = toFrame(msg, id);
  const out = new Uint8Array(frameBodySize(frame.enc, frame.id));
  writeFrameBody(out, 0, frame.enc, frame.id);
  return out;
}

/** A message ready to frame: its encoded fields and the id of its envelope. */
export interface FrameParts {
  enc: EncodedMessage;
  id: number | undefined;
}

/** Encodes `msg` unless it was encoded earlier; a message that names its own id (a response built whole) keeps it. */
export function toFrame(msg: MessageFields | EncodedMessage, id?: number): FrameParts {
  if (msg instanceof EncodedMessage) return { enc: msg, id };
  if (id === undefined && typeof msg.id === 'number') id = msg.id;
  return { enc: encodeMessage(msg), id };
}

/** Bytes of the frame body of `enc` with envelope id `id`. */
export function frameBodySize(enc: EncodedMessage, id: number | undefined): number {
  const count = enc.count + 1 + (id === undefined ? 0 : 1);
  return mapHeaderBytes(count) + enc.pairs.length + 2 + 1 + (id === undefined ? 0 : 3 + uintBytes(id));
}

/**
 * Writes the frame body of `enc` at `off` (room for frameBodySize() bytes
 * must be there); returns the offset after it. The framed stream writes
 * every body of a batch straight into the batch's buffer with it: no buffer
 * per message.
 */
export function writeFrameBody(out: Uint8Array, off: number, enc: EncodedMessage, id: number | undefined): number {
  off = writeHead(out, off, 0xa0, enc.count + 1 + (id === undefined ? 0 : 1));
  out.set(enc.pairs, off);
  off += enc.pairs.length;
  // "v": PROTOCOL_VERSION (1)
  out[off++] = 0x61;
  out[off++] = 0x76;
  out[off++] = PROTOCOL_VERSION;
  if (id === undefined) return off;
  // "id": id
  out[off++] = 0x62;
  out[off++] = 0x69;
  out[off++] = 0x64;
  return writeUint(out, off, id);
}

function readMapHeader(b: Uint8Array): [count: number, bytes: number] {
  const ai = b[0]! & 0x1f;
  if (b[0]! >> 5 !== 5 || ai > 26) throw new TypeError('a message must encode as a CBOR map of fixed size');
  if (ai < 24) return [ai, 1];
  if (ai === 24) return [b[1]!, 2];
  if (ai === 25) return [(b[1]! << 8) | b[2]!, 3];
  return [((b[1]! << 24) >>> 0) + (b[2]! << 16) + (b[3]! << 8) + b[4]!, 5];
}

function mapHeaderBytes(count: number): number {
  return count < 24 ? 1 : count < 0x100 ? 2 : count < 0x10000 ? 3 : 5;
}

function uintBytes(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

function writeUint(out: Uint8Array, off: number, n: number): number {
  return writeHead(out, off, 0x00, n);
}

/** A CBOR head (major type in `major`, argument `n` ≤ u32); returns the offset after it. */
function writeHead(out: Uint8Array, off: number, major: number, n: number): number {
  if (n < 24) {
    out[off] = major | n;
    return off + 1;
  }
  if (n < 0x100) {
    out[off] = major | 24;
    out[off + 1] = n;
    return off + 2;
  }
  if (n < 0x10000) {
    out[off] = major | 25;
    out[off + 1] = n >> 8;
    out[off + 2] = n & 0xff;
    return off + 3;
  }
  out[off] = major | 26;
  out[off + 1] = (n >>> 24) & 0xff;
  out[off + 2] = (n >> 16) & 0xff;
  out[off + 3] = (n >> 8) & 0xff;
  out[off + 4] = n & 0xff;
  return off + 5;
}

/** Decodes one CBOR item; anything malformed (including trailing bytes or absurd nesting) is bad_cbor. */
export function decodeBody(body: Uint8Array): unknown {
  try {
    return decoder.decode(body);
  } catch (err) {
    const why = err instanceof Error ? err.message : 'unknown error';
    throw new ProtocolError('bad_cbor', `undecodable CBOR body (${why})`, { cause: err });
  }
}

/** Decode + validate: the only way bytes from the network become a Message. */
export function decodeMessage(body: Uint8Array): Message {
  return validateMessage(decodeBody(body));
}
