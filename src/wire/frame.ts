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
    if (this.#pendingBytes === 0) return this.#parse(chunk);
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    if (this.#needed === 0 && this.#pendingBytes >= FRAME_HEADER_BYTES) {
      this.#needed = FRAME_HEADER_BYTES + this.#readSplitLength();
    }
    if (this.#needed === 0 || this.#pendingBytes < this.#needed) return [];
    const buf = concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#needed = 0;
    return this.#parse(buf);
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

  #parse(buf: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    let off = 0;
    while (buf.length - off >= FRAME_HEADER_BYTES) {
      const len = this.#readLength(buf, off);
      if (buf.length - off - FRAME_HEADER_BYTES < len) {
        this.#needed = FRAME_HEADER_BYTES + len;
        break;
      }
      frames.push(buf.subarray(off + FRAME_HEADER_BYTES, off + FRAME_HEADER_BYTES + len));
      off += FRAME_HEADER_BYTES + len;
    }
    if (off < buf.length) {
      this.#pending = [buf.subarray(off)];
      this.#pendingBytes = buf.length - off;
    }
    return frames;
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
