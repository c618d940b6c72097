/**
 * CBOR encoding of message bodies. One shared Encoder/Decoder pair of
 * cbor-x: plain maps in and out, no record extension (peers may be other
 * implementations), byte strings as Uint8Array.
 *
 * Messages and values are written by hand (`encodeMessage`, `encodeBody`):
 * integers, floats, strings, byte strings, booleans, null and plain arrays
 * and maps of them, byte for byte as cbor-x writes them, straight into one
 * buffer. Anything else (a Date, a Map, a bigint, other typed arrays, values
 * nested deeper than the writer goes) is encoded by cbor-x, in place.
 * Bodies are read the same way (`decodeBody`): the same subset by hand, to
 * exactly the value cbor-x returns; anything else, and every malformed
 * body, by cbor-x. ARCHITECTURE.md (Wire protocol) has the measurements.
 *
 * cbor-x is imported through its `encode`/`decode` entry points, not the
 * package root: in Node the root also loads the native string extractor
 * (cbor-extract), which decodes a body of 140 bytes or more with one native
 * call that costs more than the strings of a message take in JS.
 */
import { Encoder } from 'cbor-x/encode';
import { Decoder } from 'cbor-x/decode';
import { ProtocolError } from '../util/errors.js';
import { FRAME_HEADER_BYTES, writeFrameHeader } from './frame.js';
import { PROTOCOL_VERSION, validateMessage, type Message } from './messages.js';

const options = { useRecords: false, mapsAsObjects: true, variableMapSize: true, tagUint8Array: false } as const;
const encoder = new Encoder(options);
const decoder = new Decoder(options);

/**
 * The CBOR of one value (a payload, arguments, a result, a record): written
 * by the field writer below when it handles the value (bytes, strings,
 * numbers, plain arrays and maps of them), else by cbor-x; the same bytes
 * either way. A view of a shared buffer, as cbor-x's own output was.
 */
export function encodeBody(value: unknown): Uint8Array {
  try {
    writeValue(value, 0);
  } catch (err) {
    pos = start; // e.g. a value cbor-x refuses: nothing of it stays
    throw err;
  }
  return takePairs();
}

/** Bytes `value` takes in CBOR (the size checks of payloads, arguments, results and metadata). Throws if it is not encodable. */
export function encodedSize(value: unknown): number {
  return encodeBody(value).length;
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
 * size is not encoded again. A raw field given as a list is an array of
 * such values (the payloads of a run, wire/run.ts).
 */
export function encodeMessage(msg: MessageFields, raw?: Readonly<Record<string, Uint8Array | readonly Uint8Array[]>>): EncodedMessage {
  let count = writeFields(msg);
  if (raw !== undefined) {
    for (const key in raw) {
      writeString(key);
      const value = raw[key]!;
      if (value instanceof Uint8Array) writeBytesAsIs(value);
      else {
        room(5);
        pos = writeHead(slab, pos, 0x80, value.length);
        for (let i = 0; i < value.length; i++) writeBytesAsIs(value[i]!);
      }
      count++;
    }
  }
  return new EncodedMessage(msg.t, count, takePairs());
}

// ---- The field writer -------------------------------------------------------
//
// Every value is written exactly as cbor-x (with the options above) writes
// it, so a message decodes to the same value whichever encoded it, and the
// output is deterministic. A message's pairs are written straight into a
// shared slab and handed out as a view of it, like cbor-x's own output (and
// Node's Buffer pool): no buffer per message, no copy of what was written.

const SLAB_BYTES = 16 * 1024;
/** Arrays and maps nested deeper than this are left to cbor-x (and so are cyclic values, which it refuses). */
const MAX_WRITER_DEPTH = 4;
/** cbor-x's `encode` option that returns its own buffer, the output between its `start` and `end`, instead of a view. */
const REUSE_BUFFER_MODE = 512;
/** `Encoder.encode` with the mode argument its type declarations leave out. */
interface InPlaceEncoder {
  encode(value: unknown, mode: typeof REUSE_BUFFER_MODE): Uint8Array & { start: number; end: number };
}

let slab: Uint8Array = new Uint8Array(SLAB_BYTES);
let view: DataView = new DataView(slab.buffer);
/** Where the message being written starts in `slab`, and where the next byte goes. */
let start = 0;
let pos = 0;
const utf8 = new TextEncoder();

/** Writes the key/value pairs of `msg` but its envelope (`v`, `id`); returns how many. */
function writeFields(msg: MessageFields): number {
  let count = 0;
  try {
    // A received message sent on: its old envelope is not part of its fields.
    for (const key of Object.keys(msg)) {
      if (key === 'v' || key === 'id') continue;
      writeString(key);
      writeValue(msg[key], 0);
      count++;
    }
  } catch (err) {
    pos = start; // e.g. a value cbor-x refuses: nothing of this message stays
    throw err;
  }
  return count;
}

/** The pairs written since the last call, as a view; the next message is written after them. */
function takePairs(): Uint8Array {
  const pairs = slab.subarray(start, pos);
  start = pos;
  // A message larger than a slab got a buffer of its own: the next one starts a new slab.
  if (slab.length > SLAB_BYTES) setSlab(new Uint8Array(SLAB_BYTES));
  return pairs;
}

function setSlab(buf: Uint8Array): void {
  slab = buf;
  view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  start = pos = 0;
}

/** Makes room for `n` more bytes at `pos`, moving the message begun to a new slab (or a buffer of its own) if needed. */
function room(n: number): void {
  if (pos + n <= slab.length) return;
  const begun = slab.subarray(start, pos);
  const need = begun.length + n;
  setSlab(new Uint8Array(need <= SLAB_BYTES / 4 ? SLAB_BYTES : Math.max(need, begun.length * 2)));
  slab.set(begun);
  pos = begun.length;
}

function writeValue(value: unknown, depth: number): void {
  switch (typeof value) {
    case 'string':
      return writeString(value);
    case 'number':
      return writeNumber(value);
    case 'boolean':
      room(1);
      slab[pos++] = value ? 0xf5 : 0xf4;
      return;
    case 'undefined':
      room(1);
      slab[pos++] = 0xf7;
      return;
    case 'object':
      if (value === null) {
        room(1);
        slab[pos++] = 0xf6;
        return;
      }
      if (value instanceof Uint8Array) return writeBytes(value);
      if (depth < MAX_WRITER_DEPTH) {
        const c = value.constructor;
        if (c === Array) return writeArray(value as unknown[], depth + 1);
        if (c === Object) return writeMap(value as Record<string, unknown>, depth + 1);
      }
  }
  writeWithCborX(value);
}

/** A value the writer does not handle: encoded by cbor-x into its buffer, copied from there. */
function writeWithCborX(value: unknown): void {
  const out = (encoder as unknown as InPlaceEncoder).encode(value, REUSE_BUFFER_MODE);
  const length = out.end - out.start;
  room(length);
  slab.set(new Uint8Array(out.buffer, out.byteOffset + out.start, length), pos);
  pos += length;
}

function writeArray(items: unknown[], depth: number): void {
  room(5);
  pos = writeHead(slab, pos, 0x80, items.length);
  for (let i = 0; i < items.length; i++) writeValue(items[i], depth);
}

/** A plain object: its own enumerable string keys in order, as cbor-x takes them (Object.keys). */
function writeMap(map: Record<string, unknown>, depth: number): void {
  const keys = Object.keys(map);
  room(5);
  pos = writeHead(slab, pos, 0xa0, keys.length);
  for (const key of keys) {
    writeString(key);
    writeValue(map[key], depth);
  }
}

function writeBytes(bytes: Uint8Array): void {
  room(5);
  pos = writeHead(slab, pos, 0x40, bytes.length);
  writeBytesAsIs(bytes);
}

function writeBytesAsIs(bytes: Uint8Array): void {
  room(bytes.length);
  slab.set(bytes, pos);
  pos += bytes.length;
}

/**
 * Integers of 32 bits (and negative ones down to -2^32) as integers, every
 * other number as a 64-bit float: cbor-x's rule (its decoder would return a
 * bigint for a 64-bit integer).
 */
function writeNumber(n: number): void {
  room(9);
  if (n >>> 0 === n) pos = writeHead(slab, pos, 0x00, n);
  else if (n >> 0 === n || (n < 0 && n >= -0x1_0000_0000 && Math.floor(n) === n)) pos = writeHead(slab, pos, 0x20, -1 - n);
  else {
    slab[pos] = 0xfb;
    view.setFloat64(pos + 1, n);
    pos += 9;
  }
}

/**
 * A text string as cbor-x writes it: strings under 64 UTF-16 units by a JS
 * loop (a lone surrogate becomes its 3-byte form), longer ones by the
 * platform's UTF-8 encoder (a lone surrogate becomes U+FFFD). The head is
 * sized for the string's length in units and moved if its UTF-8 needs more.
 */
function writeString(s: string): void {
  const units = s.length;
  room(5 + units * 3);
  const guess = headBytes(units);
  let end = pos + guess;
  if (units < 0x40) {
    for (let i = 0; i < units; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) slab[end++] = c;
      else if (c < 0x800) {
        slab[end++] = (c >> 6) | 0xc0;
        slab[end++] = (c & 0x3f) | 0x80;
      } else if ((c & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
        c = 0x10000 + ((c & 0x3ff) << 10) + (s.charCodeAt(++i) & 0x3ff);
        slab[end++] = (c >> 18) | 0xf0;
        slab[end++] = ((c >> 12) & 0x3f) | 0x80;
        slab[end++] = ((c >> 6) & 0x3f) | 0x80;
        slab[end++] = (c & 0x3f) | 0x80;
      } else {
        slab[end++] = (c >> 12) | 0xe0;
        slab[end++] = ((c >> 6) & 0x3f) | 0x80;
        slab[end++] = (c & 0x3f) | 0x80;
      }
    }
  } else {
    end += utf8.encodeInto(s, slab.subarray(end, end + units * 3)).written;
  }
  const length = end - pos - guess;
  const head = headBytes(length);
  if (head !== guess) slab.copyWithin(pos + head, pos + guess, end);
  pos = writeHead(slab, pos, 0x60, length) + length;
}

/** The frame body of a message: its fields (encoded now, or earlier) inside a fresh envelope. The message is not modified. */
export function frameBody(msg: MessageFields | EncodedMessage, id?: number): Uint8Array {
  const out = newFrameBuffer(msg instanceof EncodedMessage ? FRAME_HEADER_BYTES + msg.pairs.length + 16 : 256);
  const size = appendFrame(out, msg, id);
  return out.buf.slice(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + size);
}

/** A buffer that frames are appended to (`appendFrame`): `len` bytes of `buf` are written. */
export interface FrameBuffer {
  buf: Uint8Array;
  view: DataView;
  len: number;
}

export function newFrameBuffer(bytes: number): FrameBuffer {
  const buf = new Uint8Array(bytes);
  return { buf, view: new DataView(buf.buffer), len: 0 };
}

/**
 * Appends the frame of `msg` to `out`: the length header, then the body,
 * the fields (encoded now, or earlier: an EncodedMessage) followed by the
 * envelope (`v`, and `id`, or the message's own `id` when it names one and
 * `id` is not given; the message is not modified). The fields are written
 * straight into `out`, which grows (to a new `buf`) as needed: the framed
 * stream writes every message of a batch this way, with no buffer and no
 * copy per message. Returns the body's size; `out.len` is then past the
 * frame. On a throw (a value that cannot be encoded) `out.len` is unchanged.
 */
export function appendFrame(out: FrameBuffer, msg: MessageFields | EncodedMessage, id?: number): number {
  // The writer writes into `out` for this frame; whatever it was writing into stays as it was.
  const slab0 = slab;
  const view0 = view;
  const start0 = start;
  const pos0 = pos;
  slab = out.buf;
  view = out.view;
  start = 0; // room() then keeps every frame before this one when it grows the buffer
  pos = out.len;
  try {
    const at = pos;
    // The header, and one byte for the map's head (moved below if the map has 24 pairs or more).
    room(FRAME_HEADER_BYTES + 1);
    pos += FRAME_HEADER_BYTES + 1;
    let count: number;
    if (msg instanceof EncodedMessage) {
      writeBytesAsIs(msg.pairs);
      count = msg.count;
    } else {
      if (id === undefined && typeof msg.id === 'number') id = msg.id;
      count = writeFields(msg);
    }
    room(3 + 3 + 5);
    // "v": PROTOCOL_VERSION (1)
    slab[pos++] = 0x61;
    slab[pos++] = 0x76;
    slab[pos++] = PROTOCOL_VERSION;
    count++;
    if (id !== undefined) {
      // "id": id
      slab[pos++] = 0x62;
      slab[pos++] = 0x69;
      slab[pos++] = 0x64;
      pos = writeUint(slab, pos, id);
      count++;
    }
    const head = headBytes(count);
    if (head > 1) {
      room(head - 1);
      slab.copyWithin(at + FRAME_HEADER_BYTES + head, at + FRAME_HEADER_BYTES + 1, pos);
      pos += head - 1;
    }
    writeHead(slab, at + FRAME_HEADER_BYTES, 0xa0, count);
    const size = pos - at - FRAME_HEADER_BYTES;
    writeFrameHeader(slab, at, size);
    out.buf = slab;
    out.view = view;
    out.len = pos;
    return size;
  } finally {
    slab = slab0;
    view = view0;
    start = start0;
    pos = pos0;
  }
}

/** Bytes of a CBOR head with argument `n` (≤ u32), e.g. of a byte string of n bytes. */
export function headBytes(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

function writeUint(out: Uint8Array, off: number, n: number): number {
  return writeHead(out, off, 0x00, n);
}

/** A CBOR head (major type in `major`, argument `n` ≤ u32); returns the offset after it. */
/**
 * Writes `bytes` as a CBOR byte string (its head, major type 2, then the
 * bytes) at `off`, the bytes the writer makes of a Uint8Array; returns where
 * it ends. For a caller that gathers encoded values in a buffer of its own.
 */
export function writeByteString(out: Uint8Array, off: number, bytes: Uint8Array): number {
  const at = writeHead(out, off, 0x40, bytes.length);
  out.set(bytes, at);
  return at + bytes.length;
}

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

/**
 * Decodes one CBOR item; anything malformed (including trailing bytes or
 * absurd nesting) is bad_cbor. The body reader below decodes what messages
 * are made of; whatever it does not read (or cannot: a malformed body) is
 * decoded by cbor-x, which returns the value or throws as it always did.
 */
export function decodeBody(body: Uint8Array, from = 0, to = body.length): unknown {
  const value = readBody(body, from, to);
  if (value !== NOT_READ) return value;
  try {
    return decoder.decode(from === 0 && to === body.length ? body : body.subarray(from, to));
  } catch (err) {
    const why = err instanceof Error ? err.message : 'unknown error';
    throw new ProtocolError('bad_cbor', `undecodable CBOR body (${why})`, { cause: err });
  }
}

/**
 * Decode + validate: the only way bytes from the network become a Message.
 * The body is bytes `from` to `to` of `body` (all of it by default): a
 * received chunk's frames are decoded where they lie, with no view each.
 */
export function decodeMessage(body: Uint8Array, from = 0, to = body.length): Message {
  return validateMessage(decodeBody(body, from, to));
}

// ---- The body reader --------------------------------------------------------
//
// Reads the subset of CBOR that messages and values are made of, returning
// exactly what cbor-x (with the options above) returns for it: unsigned and
// negative integers up to 32 bits (cbor-x returns a bigint beyond), text
// strings (decoded as cbor-x decodes them, invalid UTF-8 included), byte
// strings (a view of the body, of its class, as cbor-x's `subarray`), true,
// false, null, undefined, 32- and 64-bit floats, and definite-length arrays
// and maps (text keys, Object's prototype) nested up to MAX_READER_DEPTH.
// Anything else (tags, indefinite lengths, 16-bit floats, other simple
// values, 64-bit heads, keys that are not text or are `__proto__`, which
// cbor-x renames), and any body that is malformed, truncated or has bytes
// after its item, is given up on: decodeBody passes it to cbor-x.
// Every length is checked against the end of the body before it is read.

/** What readBody returns for a body it leaves to cbor-x. */
export const NOT_READ: unique symbol = Symbol('not read');
/** Thrown (never out of readBody) to leave a body to cbor-x. */
const GIVE_UP = new Error('left to cbor-x');
/** Arrays and maps nested deeper than this are left to cbor-x. */
const MAX_READER_DEPTH = 8;
/** Text strings longer than this are decoded by TextDecoder, as cbor-x does (it strips a leading BOM, unlike the JS loop). */
const MAX_JS_STRING_BYTES = 64;
const EMPTY = new Uint8Array(0);
const utf8Decoder = new TextDecoder();
const floatBytes = new Uint8Array(8);
const floatView = new DataView(floatBytes.buffer);
const fromCharCode = String.fromCharCode;

/**
 * Node's Buffer `subarray` (a JS function: it adjusts its offsets, then
 * makes `new FastBuffer(buffer, byteOffset + start, length)`) and that
 * class, found as the Buffer's species; undefined outside Node. A body whose
 * `subarray` is this one gets its byte strings made by the class straight,
 * the very view `subarray` makes without its call and offset checks (the
 * offsets here are checked already).
 */
const bufferSubarray = typeof Buffer === 'function' ? Buffer.prototype.subarray : undefined;
const BufferView = typeof Buffer === 'function' ? (Buffer as unknown as Record<symbol, new (b: ArrayBufferLike, from: number, length: number) => Uint8Array>)[Symbol.species] : undefined;

let src: Uint8Array = EMPTY;
let at = 0;
let end = 0;
/** Whether `src`'s byte strings are made by BufferView (see above). */
let srcIsBuffer = false;

/** The value of bytes `from` to `to` of `body` if the reader reads it, else NOT_READ (exported for the tests that compare it with cbor-x). */
export function readBody(body: Uint8Array, from = 0, to = body.length): unknown {
  src = body;
  at = from;
  end = to;
  srcIsBuffer = body.subarray === bufferSubarray;
  let value: unknown = NOT_READ;
  try {
    value = readItem(0);
    if (at !== end) value = NOT_READ; // bytes after the item: cbor-x says how
  } catch {
    value = NOT_READ; // GIVE_UP, or anything unforeseen: cbor-x decides
  }
  src = EMPTY; // the body is not kept alive by the reader
  return value;
}

function giveUp(): never {
  throw GIVE_UP;
}

function readItem(depth: number): unknown {
  if (at >= end) giveUp();
  const head = src[at++]!;
  const major = head >> 5;
  let n = head & 0x1f;
  if (major === 7) {
    switch (head) {
      case 0xf4:
        return false;
      case 0xf5:
        return true;
      case 0xf6:
        return null;
      case 0xf7:
        return undefined;
      case 0xfa:
        return readFloat(4);
      case 0xfb:
        return readFloat(8);
    }
    giveUp();
  }
  if (n >= 24) {
    if (n === 24) {
      if (at >= end) giveUp();
      n = src[at++]!;
    } else if (n === 25) {
      if (end - at < 2) giveUp();
      n = (src[at]! << 8) | src[at + 1]!;
      at += 2;
    } else if (n === 26) {
      if (end - at < 4) giveUp();
      n = src[at]! * 0x100_0000 + ((src[at + 1]! << 16) | (src[at + 2]! << 8) | src[at + 3]!);
      at += 4;
    } else giveUp(); // 64-bit heads, reserved, indefinite lengths
  }
  switch (major) {
    case 0:
      return n;
    case 1:
      return -1 - n;
    case 2: {
      if (n > end - at) giveUp();
      const bytes = srcIsBuffer ? new BufferView!(src.buffer, src.byteOffset + at, n) : src.subarray(at, at + n);
      at += n;
      return bytes;
    }
    case 3:
      if (n > end - at) giveUp();
      return readText(n);
    case 4: {
      // Every item takes a byte at least: a length beyond the rest is malformed, and allocates nothing.
      if (depth >= MAX_READER_DEPTH || n > end - at) giveUp();
      const items = new Array<unknown>(n);
      for (let i = 0; i < n; i++) items[i] = readItem(depth + 1);
      return items;
    }
    case 5: {
      if (depth >= MAX_READER_DEPTH || n > (end - at) / 2) giveUp();
      const map: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) {
        const key = readKey();
        const value = readItem(depth + 1);
        // The envelope's keys, in every message, get a store of their own each: one site storing every key of
        // every message type sees all their shapes, and such a keyed store was a third of the reader's time.
        if (key === 't') map.t = value;
        else if (key === 'v') map.v = value;
        else map[key] = value;
      }
      return map;
    }
  }
  return giveUp(); // tags
}

/** A map key: a text string other than `__proto__`. A key repeated is assigned again, as cbor-x does. */
function readKey(): string {
  if (at >= end) giveUp();
  const head = src[at]!;
  if (head < 0x60 || head > 0x77) {
    if (head !== 0x78) giveUp(); // keys over 255 bytes, and keys that are not text, go to cbor-x
    if (end - at < 2) giveUp();
    at++;
  }
  at++;
  const n = head === 0x78 ? src[at - 1]! : head & 0x1f;
  if (n > end - at) giveUp();
  const key = readText(n);
  if (key === '__proto__') giveUp();
  return key;
}

function readFloat(bytes: 4 | 8): number {
  if (end - at < bytes) giveUp();
  for (let i = 0; i < bytes; i++) floatBytes[i] = src[at + i]!;
  at += bytes;
  return bytes === 4 ? floatView.getFloat32(0) : floatView.getFloat64(0);
}

/** `n` bytes of UTF-8 (checked to be there) as cbor-x decodes them. */
function readText(n: number): string {
  if (n <= MAX_CACHED_BYTES) return readShortText(n);
  if (n > MAX_JS_STRING_BYTES) return utf8Decoder.decode(src.subarray(at, (at += n)));
  const stop = at + n;
  let s = '';
  for (let i = at; i < stop; i++) {
    const c = src[i]!;
    if (c >= 0x80) return readUtf8(stop);
    s += fromCharCode(c);
  }
  at = stop;
  return s;
}

// Short ASCII strings (every key, and most short values: topics, names) are
// taken from a small cache of those read before, found by a hash of their
// bytes and compared byte for byte: a message's keys cost no string each.
const MAX_CACHED_BYTES = 16;
const CACHE_SLOTS = 1024;
const cachedStrings: (string | undefined)[] = new Array<string | undefined>(CACHE_SLOTS).fill(undefined);
const cachedBytes = new Uint8Array(CACHE_SLOTS * MAX_CACHED_BYTES);

/** Every one-byte ASCII string, for keys such as `t`, `v` and `d`: no hash and no comparison for them. */
const ONE_BYTE_STRINGS: readonly string[] = Array.from({ length: 0x80 }, (_, c) => fromCharCode(c));

function readShortText(n: number): string {
  if (n === 1 && src[at]! < 0x80) return ONE_BYTE_STRINGS[src[at++]!]!;
  const stop = at + n;
  let hash = n;
  for (let i = at; i < stop; i++) {
    const c = src[i]!;
    if (c >= 0x80) return readUtf8(stop);
    hash = Math.imul(hash ^ c, 0x01000193);
  }
  const slot = (hash >>> 22) & (CACHE_SLOTS - 1);
  const cached = cachedStrings[slot];
  const base = slot * MAX_CACHED_BYTES;
  if (cached !== undefined && cached.length === n) {
    let i = 0;
    while (i < n && cachedBytes[base + i] === src[at + i]) i++;
    if (i === n) {
      at = stop;
      return cached;
    }
  }
  let s = '';
  for (let i = 0; i < n; i++) {
    const c = src[at + i]!;
    cachedBytes[base + i] = c;
    s += fromCharCode(c);
  }
  cachedStrings[slot] = s;
  at = stop;
  return s;
}

/**
 * cbor-x's JS decoding of a short string that is not all ASCII, step for
 * step: a byte that does not start or continue a valid sequence becomes
 * U+FFFD, as the WHATWG decoder does.
 */
function readUtf8(stop: number): string {
  const units: number[] = [];
  while (at < stop) {
    const b1 = src[at++]!;
    if ((b1 & 0x80) === 0) {
      units.push(b1);
    } else if ((b1 & 0xe0) === 0xc0) {
      if (b1 < 0xc2 || at >= stop || (src[at]! & 0xc0) !== 0x80) units.push(0xfffd);
      else units.push(((b1 & 0x1f) << 6) | (src[at++]! & 0x3f));
    } else if ((b1 & 0xf0) === 0xe0) {
      const b2 = at < stop ? src[at]! : 0;
      if (at >= stop || (b2 & 0xc0) !== 0x80 || (b1 === 0xe0 && b2 < 0xa0) || (b1 === 0xed && b2 >= 0xa0)) {
        units.push(0xfffd);
      } else {
        at++;
        if (at >= stop || (src[at]! & 0xc0) !== 0x80) units.push(0xfffd);
        else units.push(((b1 & 0x1f) << 12) | ((b2 & 0x3f) << 6) | (src[at++]! & 0x3f));
      }
    } else if ((b1 & 0xf8) === 0xf0) {
      const b2 = at < stop ? src[at]! : 0;
      if (b1 > 0xf4 || at >= stop || (b2 & 0xc0) !== 0x80 || (b1 === 0xf0 && b2 < 0x90) || (b1 === 0xf4 && b2 >= 0x90)) {
        units.push(0xfffd);
      } else {
        at++;
        if (at >= stop || (src[at]! & 0xc0) !== 0x80) units.push(0xfffd);
        else {
          const b3 = src[at++]! & 0x3f;
          if (at >= stop || (src[at]! & 0xc0) !== 0x80) units.push(0xfffd);
          else {
            const unit = (((b1 & 0x07) << 18) | ((b2 & 0x3f) << 12) | (b3 << 6) | (src[at++]! & 0x3f)) - 0x10000;
            units.push(((unit >>> 10) & 0x3ff) | 0xd800, 0xdc00 | (unit & 0x3ff));
          }
        }
      }
    } else {
      units.push(0xfffd);
    }
  }
  return fromCharCode(...units);
}
