/**
 * Length-prefixed frames: u32 big-endian body length, then the body.
 *
 * FrameDecoder turns arbitrary chunks from a stream into whole frame bodies.
 * It checks the announced length against the limit *before* buffering the
 * body, so a peer cannot make us allocate more than maxFrameSize per stream.
 */
import { FrameTooLargeError, ProtocolError } from '../util/errors.js';

export const FRAME_HEADER_BYTES = 4;
export const DEFAULT_MAX_FRAME_SIZE = 1024 * 1024;

/** Writes the header for `bodyLength` at `offset` of `out`. */
export function writeFrameHeader(out: Uint8Array, offset: number, bodyLength: number): void {
  out[offset] = bodyLength >>> 24;
  out[offset + 1] = (bodyLength >>> 16) & 0xff;
  out[offset + 2] = (bodyLength >>> 8) & 0xff;
  out[offset + 3] = bodyLength & 0xff;
}

export function encodeFrame(body: Uint8Array, maxFrameSize = DEFAULT_MAX_FRAME_SIZE): Uint8Array {
  if (body.length > maxFrameSize) throw new FrameTooLargeError(body.length, maxFrameSize);
  const out = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  writeFrameHeader(out, 0, body.length);
  out.set(body, FRAME_HEADER_BYTES);
  return out;
}

export class FrameDecoder {
  readonly maxFrameSize: number;
  // Bytes of an incomplete frame, kept as the chunks they arrived in so that
  // a large frame is copied once when complete, not once per chunk.
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #needed = 0; // total bytes (header + body) of the pending frame, 0 while its header is incomplete
  // The frames completed by the last feed(): where each body lies (arrays reused from one feed to the next).
  #count = 0;
  #bufs: (Uint8Array | undefined)[] = [];
  #starts: number[] = [];
  #ends: number[] = [];

  constructor(maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {
    this.maxFrameSize = maxFrameSize;
  }

  /** Bytes held waiting for the rest of a frame. */
  get buffered(): number {
    return this.#pendingBytes;
  }

  /** The whole size (header + body) of the frame being received once its header is in, else the bytes held. */
  get pendingFrameBytes(): number {
    return this.#needed > 0 ? this.#needed : this.#pendingBytes;
  }

  /**
   * Feeds a chunk and returns the complete frame bodies it finishes (views,
   * not copies, in the common case). Throws FrameTooLargeError as soon as a
   * header announces more than the limit.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    const n = this.feed(chunk);
    const bodies = new Array<Uint8Array>(n);
    for (let i = 0; i < n; i++) bodies[i] = this.frameBuffer(i).subarray(this.frameStart(i), this.frameEnd(i));
    return bodies;
  }

  /**
   * Feeds a chunk and returns how many frames it completes; frame `i`'s body
   * is bytes `frameStart(i)` to `frameEnd(i)` of `frameBuffer(i)`, until the
   * next feed(). No view per frame: the reader decodes a body where it lies.
   * The bytes of a frame begun in an earlier chunk are copied together once
   * it is complete (only that frame's: the rest of the chunk stays in place).
   * Throws FrameTooLargeError as soon as a header announces more than the limit.
   */
  feed(chunk: Uint8Array): number {
    this.#count = 0;
    let off = 0;
    if (this.#pendingBytes > 0) {
      if (this.#needed === 0) {
        // The header itself is split: take what it lacks from this chunk.
        const take = Math.min(FRAME_HEADER_BYTES - this.#pendingBytes, chunk.length);
        this.#pending.push(chunk.subarray(0, take));
        this.#pendingBytes += take;
        off = take;
        if (this.#pendingBytes < FRAME_HEADER_BYTES) return this.#done();
        this.#needed = FRAME_HEADER_BYTES + this.#readSplitLength();
      }
      const take = Math.min(this.#needed - this.#pendingBytes, chunk.length - off);
      if (this.#pendingBytes + take < this.#needed) {
        this.#pending.push(off === 0 ? chunk : chunk.subarray(off));
        this.#pendingBytes += chunk.length - off;
        return this.#done();
      }
      this.#pending.push(chunk.subarray(off, off + take));
      const frame = concat(this.#pending, this.#needed);
      this.#pending = [];
      this.#pendingBytes = 0;
      this.#needed = 0;
      this.#add(frame, FRAME_HEADER_BYTES, frame.length);
      off += take;
    }
    this.#parse(chunk, off);
    return this.#done();
  }

  /** Lets go of the chunks of frames fed before (only the first #count entries are current); returns #count. */
  #done(): number {
    for (let i = this.#count; i < this.#bufs.length && this.#bufs[i] !== undefined; i++) this.#bufs[i] = undefined;
    return this.#count;
  }

  frameBuffer(i: number): Uint8Array {
    return this.#bufs[i]!;
  }

  frameStart(i: number): number {
    return this.#starts[i]!;
  }

  frameEnd(i: number): number {
    return this.#ends[i]!;
  }

  /** Call at end of stream: leftover bytes mean the peer stopped mid-frame. */
  end(): void {
    const rest = this.#pendingBytes;
    if (rest > 0) {
      this.#pending = [];
      this.#pendingBytes = 0;
      this.#needed = 0;
      throw new ProtocolError('truncated_frame', `stream ended inside a frame (${rest} bytes of an incomplete frame)`);
    }
  }

  #readLength(buf: Uint8Array, off: number): number {
    const len = ((buf[off]! << 24) >>> 0) + (buf[off + 1]! << 16) + (buf[off + 2]! << 8) + buf[off + 3]!;
    if (len > this.maxFrameSize) throw new FrameTooLargeError(len, this.maxFrameSize);
    return len;
  }

  /** Reads the header of the pending frame when it is spread over several chunks (without copying them). */
  #readSplitLength(): number {
    const head = new Uint8Array(FRAME_HEADER_BYTES);
    let n = 0;
    for (const c of this.#pending) {
      for (let i = 0; i < c.length && n < FRAME_HEADER_BYTES; i++) head[n++] = c[i]!;
      if (n === FRAME_HEADER_BYTES) break;
    }
    return this.#readLength(head, 0);
  }

  #add(buf: Uint8Array, start: number, end: number): void {
    const i = this.#count++;
    this.#bufs[i] = buf;
    this.#starts[i] = start;
    this.#ends[i] = end;
  }

  /** Adds the complete frames of `buf` from `off` on; keeps the incomplete rest. */
  #parse(buf: Uint8Array, off: number): void {
    while (buf.length - off >= FRAME_HEADER_BYTES) {
      const len = this.#readLength(buf, off);
      if (buf.length - off - FRAME_HEADER_BYTES < len) {
        this.#needed = FRAME_HEADER_BYTES + len;
        break;
      }
      this.#add(buf, off + FRAME_HEADER_BYTES, off + FRAME_HEADER_BYTES + len);
      off += FRAME_HEADER_BYTES + len;
    }
    if (off < buf.length) {
      this.#pending = [buf.subarray(off)];
      this.#pendingBytes = buf.length - off;
    }
  }
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
