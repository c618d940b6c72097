import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { FrameTooLargeError, ProtocolError } from '../../src/util/errors.js';
import { DEFAULT_MAX_FRAME_SIZE, encodeFrame, FRAME_HEADER_BYTES, FrameDecoder, writeFrameHeader } from '../../src/wire/frame.js';

const SEED = 0x5eed;

function concat(parts: Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Splits `bytes` at the given offsets (any order, duplicates and out-of-range values allowed). */
function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % (bytes.length + 1))))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    chunks.push(bytes.subarray(prev, p)); // may be empty: empty chunks must be harmless too
    prev = p;
  }
  chunks.push(bytes.subarray(prev));
  return chunks;
}

function feed(decoder: FrameDecoder, chunks: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const c of chunks) out.push(...decoder.push(c).map((f) => f.slice()));
  return out;
}

function body(length: number, seed = length): Uint8Array {
  const b = new Uint8Array(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

function header(length: number): Uint8Array {
  const h = new Uint8Array(FRAME_HEADER_BYTES);
  writeFrameHeader(h, 0, length);
  return h;
}

function assertFrames(actual: Uint8Array[], expected: Uint8Array[]): void {
  assert.equal(actual.length, expected.length, 'number of frames');
  for (let i = 0; i < expected.length; i++) assert.deepEqual(actual[i], expected[i], `frame ${i}`);
}

describe('writeFrameHeader / encodeFrame', () => {
  test('the header is the body length as u32 big-endian', () => {
    const out = new Uint8Array(6).fill(0xee);
    writeFrameHeader(out, 1, 0x01020304);
    assert.deepEqual([...out], [0xee, 0x01, 0x02, 0x03, 0x04, 0xee]);
    writeFrameHeader(out, 0, 0xffffffff);
    assert.deepEqual([...out.subarray(0, 4)], [0xff, 0xff, 0xff, 0xff]);
    writeFrameHeader(out, 0, 0);
    assert.deepEqual([...out.subarray(0, 4)], [0, 0, 0, 0]);
  });

  test('encodeFrame prefixes the body with its length', () => {
    const frame = encodeFrame(new Uint8Array([7, 8, 9]));
    assert.deepEqual([...frame], [0, 0, 0, 3, 7, 8, 9]);
    assert.deepEqual([...encodeFrame(new Uint8Array(0))], [0, 0, 0, 0]);
    const big = encodeFrame(body(300));
    assert.deepEqual([...big.subarray(0, 4)], [0, 0, 1, 44]);
    assert.deepEqual(big.subarray(4), body(300));
  });

  test('encodeFrame accepts a body of exactly the limit and refuses one byte more', () => {
    assert.equal(encodeFrame(new Uint8Array(100), 100).length, 104);
    assert.throws(
      () => encodeFrame(new Uint8Array(101), 100),
      (err) => err instanceof FrameTooLargeError && err.kind === 'frame_too_large' && err.size === 101 && err.limit === 100,
    );
    assert.throws(() => encodeFrame(new Uint8Array(DEFAULT_MAX_FRAME_SIZE + 1)), FrameTooLargeError);
  });
});

describe('FrameDecoder', () => {
  test('one frame in one chunk', () => {
    const d = new FrameDecoder();
    assertFrames(feed(d, [encodeFrame(body(10))]), [body(10)]);
    assert.equal(d.buffered, 0);
    d.end();
  });

  test('many frames in one chunk', () => {
    const bodies = Array.from({ length: 1000 }, (_, i) => body(i % 50, i));
    const d = new FrameDecoder();
    const frames = d.push(concat(bodies.map((b) => encodeFrame(b))));
    assertFrames(frames, bodies);
    assert.equal(d.buffered, 0);
    d.end();
  });

  test('zero-length bodies, alone, in a row and between other frames', () => {
    const d = new FrameDecoder();
    assertFrames(d.push(encodeFrame(new Uint8Array(0))), [new Uint8Array(0)]);
    const bodies = [new Uint8Array(0), new Uint8Array(0), body(3), new Uint8Array(0), body(1), new Uint8Array(0)];
    assertFrames(d.push(concat(bodies.map((b) => encodeFrame(b)))), bodies);
    // a zero-length frame whose header is split
    assertFrames(feed(d, [new Uint8Array([0, 0]), new Uint8Array([0]), new Uint8Array([0])]), [new Uint8Array(0)]);
    assert.equal(d.buffered, 0);
    d.end();
  });

  test('a header split across chunks in every possible way', () => {
    const frame = encodeFrame(body(20));
    for (let a = 1; a < FRAME_HEADER_BYTES; a++) {
      for (let b = a; b <= FRAME_HEADER_BYTES; b++) {
        const d = new FrameDecoder();
        assert.deepEqual(d.push(frame.subarray(0, a)), []);
        assert.equal(d.buffered, a);
        const mid = d.push(frame.subarray(a, b));
        assert.deepEqual(mid, []);
        assertFrames(feed(d, [frame.subarray(b)]), [body(20)]);
        assert.equal(d.buffered, 0);
        d.end();
      }
    }
  });

  test('a stream fed one byte at a time', () => {
    const bodies = [body(5), new Uint8Array(0), body(300), body(1)];
    const bytes = concat(bodies.map((b) => encodeFrame(b)));
    const d = new FrameDecoder();
    const chunks = Array.from(bytes, (x) => new Uint8Array([x]));
    assertFrames(feed(d, chunks), bodies);
    d.end();
  });

  test('the tail of one chunk starts the next frame', () => {
    const a = encodeFrame(body(10, 1));
    const b = encodeFrame(body(10, 2));
    const c = encodeFrame(body(10, 3));
    const all = concat([a, b, c]);
    const d = new FrameDecoder();
    // chunk 1: frame a + half of b's header; chunk 2: rest of b + most of c; chunk 3: last byte of c
    assertFrames(d.push(all.subarray(0, 16)), [body(10, 1)]);
    assertFrames(d.push(all.subarray(16, 41)), [body(10, 2)]);
    assert.equal(d.buffered, 41 - 28);
    assertFrames(d.push(all.subarray(41)), [body(10, 3)]);
    d.end();
  });

  test('empty chunks are harmless anywhere', () => {
    const frame = encodeFrame(body(8));
    const d = new FrameDecoder();
    const e = new Uint8Array(0);
    assertFrames(feed(d, [e, frame.subarray(0, 2), e, frame.subarray(2, 6), e, frame.subarray(6), e]), [body(8)]);
    d.end();
  });

  test('a 1 MiB frame arriving in 64 KiB chunks is returned once, complete', () => {
    const size = 1024 * 1024;
    const big = body(size, 7);
    const frame = encodeFrame(big);
    const d = new FrameDecoder();
    const step = 64 * 1024;
    let result: Uint8Array[] = [];
    let chunks = 0;
    for (let off = 0; off < frame.length; off += step) {
      const frames = d.push(frame.subarray(off, off + step));
      chunks++;
      if (off + step < frame.length) {
        assert.deepEqual(frames, [], `no frame before the last chunk (chunk ${chunks})`);
        assert.equal(d.buffered, off + step);
      } else {
        result = frames;
      }
    }
    assert.equal(chunks, 17); // 4 header bytes spill into a 17th chunk
    assert.equal(result.length, 1);
    assert.equal(result[0]!.length, size);
    assert.ok(Buffer.from(result[0]!).equals(Buffer.from(big)));
    assert.equal(d.buffered, 0);
    d.end();
  });

  test('a frame of exactly maxFrameSize is accepted', () => {
    const d = new FrameDecoder(1000);
    assertFrames(d.push(encodeFrame(body(1000), 1000)), [body(1000)]);
    d.end();
  });

  test('a length over the limit throws as soon as the header is complete, before any body byte', () => {
    const d = new FrameDecoder(1000);
    assert.throws(
      () => d.push(header(1001)),
      (err) => err instanceof FrameTooLargeError && err instanceof ProtocolError && err.kind === 'frame_too_large' && err.size === 1001 && err.limit === 1000,
    );
  });

  test('a length over the limit in a header split across chunks throws on the chunk that completes it', () => {
    for (let split = 1; split < FRAME_HEADER_BYTES; split++) {
      const h = header(0xffffffff);
      const d = new FrameDecoder();
      assert.deepEqual(d.push(h.subarray(0, split)), []);
      assert.throws(
        () => d.push(h.subarray(split)),
        (err) => err instanceof FrameTooLargeError && err.size === 0xffffffff && err.limit === DEFAULT_MAX_FRAME_SIZE,
      );
    }
  });

  test('a length over the limit after valid frames in the same chunk throws', () => {
    const d = new FrameDecoder(64);
    const chunk = concat([encodeFrame(body(10)), encodeFrame(body(64)), header(65)]);
    assert.throws(() => d.push(chunk), (err) => err instanceof FrameTooLargeError && err.size === 65);
  });

  test('a length over the limit after a partial frame throws when its header arrives', () => {
    const d = new FrameDecoder(64);
    const first = encodeFrame(body(50));
    assert.deepEqual(d.push(first.subarray(0, 20)), []);
    // the rest of the first frame plus the header of an oversized one
    assert.throws(() => d.push(concat([first.subarray(20), header(1 << 20)])), FrameTooLargeError);
  });

  test('end() inside a frame throws truncated_frame (partial header and partial body)', () => {
    const frame = encodeFrame(body(10));
    for (const cut of [1, 2, 3, 4, 5, 13]) {
      const d = new FrameDecoder();
      d.push(frame.subarray(0, cut));
      assert.throws(
        () => d.end(),
        (err) => err instanceof ProtocolError && !(err instanceof FrameTooLargeError) && err.kind === 'truncated_frame' && err.message.includes(`${cut} bytes`),
      );
      assert.equal(d.buffered, 0, 'the incomplete frame is dropped');
      d.end(); // nothing left: no second error
    }
  });

  test('end() after whole frames does nothing', () => {
    const d = new FrameDecoder();
    d.end();
    d.push(encodeFrame(body(3)));
    d.end();
    d.end();
  });

  test('property: any split of a concatenation of random frames yields exactly the frames', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 600 }), { maxLength: 25 }),
        fc.array(fc.nat(), { maxLength: 60 }),
        (bodies, cuts) => {
          const bytes = concat(bodies.map((b) => encodeFrame(b)));
          const d = new FrameDecoder();
          assertFrames(feed(d, splitAt(bytes, cuts)), bodies);
          assert.equal(d.buffered, 0);
          d.end();
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });

  test('property: a stream cut short inside its last frame yields the earlier frames, then truncated_frame', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 10 }),
        fc.uint8Array({ maxLength: 200 }),
        fc.nat(),
        fc.array(fc.nat(), { maxLength: 20 }),
        (bodies, last, missingSeed, cuts) => {
          const lastFrame = encodeFrame(last);
          const missing = 1 + (missingSeed % lastFrame.length); // 1..whole frame
          const bytes = concat([...bodies.map((b) => encodeFrame(b)), lastFrame.subarray(0, lastFrame.length - missing)]);
          const d = new FrameDecoder();
          assertFrames(feed(d, splitAt(bytes, cuts)), bodies);
          if (missing === lastFrame.length) {
            d.end(); // nothing of the last frame arrived: a clean end
          } else {
            assert.throws(() => d.end(), (err) => err instanceof ProtocolError && err.kind === 'truncated_frame');
          }
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  test('property: with a small limit, a frame over it always throws FrameTooLargeError, never yields', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 100 }), { maxLength: 5 }),
        fc.integer({ min: 101, max: 0xffffffff }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (bodies, badLength, cuts) => {
          const bytes = concat([...bodies.map((b) => encodeFrame(b)), header(badLength), new Uint8Array(20)]);
          const d = new FrameDecoder(100);
          const got: Uint8Array[] = [];
          let error: unknown;
          try {
            for (const c of splitAt(bytes, cuts)) got.push(...d.push(c).map((f) => f.slice()));
          } catch (err) {
            error = err;
          }
          assert.ok(error instanceof FrameTooLargeError, 'FrameTooLargeError thrown');
          assert.equal(error.size, badLength);
          // every frame yielded before the error is one of the valid ones, in order
          assertFrames(got, bodies.slice(0, got.length));
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });
});
