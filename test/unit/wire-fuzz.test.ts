/**
 * Fuzzing the receive path: random bytes and random CBOR values through
 * FrameDecoder + decodeMessage (and through FramedStream). Whatever a peer
 * sends, the outcome is a validated message or a ProtocolError: never a
 * TypeError/RangeError escaping, never a hang. Fixed seeds keep it repeatable.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import { Encoder } from 'cbor-x/encode';
import fc from 'fast-check';
import { createFakeStream } from '../helpers/fake-stream.js';
import { ProtocolError } from '../../src/util/errors.js';
import { decodeMessage } from '../../src/wire/codec.js';
import { encodeFrame, FrameDecoder, writeFrameHeader } from '../../src/wire/frame.js';
import { FramedStream } from '../../src/wire/framed-stream.js';
import { defineMessage, messageDef, PROTOCOL_VERSION, validateMessage, type Message } from '../../src/wire/messages.js';
import { f } from '../../src/wire/schema.js';

const SEED = 20_240_601;
/** Generous bound on the time one input may take: catches pathological (quadratic, looping) cases, not noise. */
const MAX_MS_PER_INPUT = 1000;

// One test-only type with every schema kind, so random envelopes reach deep validation.
const FUZZ = defineMessage(248, 'TEST_FUZZ_ALL', {
  b: f.bytes(0, 8),
  n: f.uint(100),
  i: f.opt(f.int(-5, 5)),
  s: f.opt(f.str(0, 6)),
  e: f.opt(f.enum('x', 'y', 1)),
  flag: f.opt(f.bool()),
  list: f.opt(f.arr(f.obj({ k: f.uint(3) }), 3)),
  o: f.opt(f.obj({ deep: f.opt(f.obj({ z: f.any() })) })),
  payload: f.opt(f.any()),
});
const TYPES = [1, 2, 3, 4, 5, FUZZ.type];

const raw = new Encoder({ useRecords: false, mapsAsObjects: true, variableMapSize: true, tagUint8Array: false });
const tryEncode = (value: unknown): Uint8Array | undefined => {
  try {
    return raw.encode(value);
  } catch {
    return undefined;
  }
};

/** Runs `fn`; the outcome must be a valid message or a ProtocolError, quickly. */
function expectMessageOrProtocolError(fn: () => Message): Message | ProtocolError {
  const start = performance.now();
  let outcome: Message | ProtocolError;
  try {
    outcome = fn();
  } catch (err) {
    if (!(err instanceof ProtocolError)) {
      throw new assert.AssertionError({ message: `a non-protocol error escaped: ${String(err)}`, actual: err, expected: ProtocolError });
    }
    assert.equal(typeof err.message, 'string');
    outcome = err;
  }
  const ms = performance.now() - start;
  assert.ok(ms < MAX_MS_PER_INPUT, `one input took ${ms.toFixed(0)} ms`);
  if (!(outcome instanceof ProtocolError)) checkValidMessage(outcome);
  return outcome;
}

function checkValidMessage(msg: Message): void {
  assert.equal(msg.v, PROTOCOL_VERSION);
  assert.ok(Number.isInteger(msg.t));
  assert.ok(messageDef(msg.t) !== undefined);
  assert.equal(Object.getPrototypeOf(msg), Object.prototype);
  assert.equal(validateMessage(msg), msg); // validating twice gives the same answer
}

// ---- generators ------------------------------------------------------------

/** Byte snippets that make random input look like CBOR often enough to get past the first byte. */
const SNIPPETS: number[][] = [
  [0x00], [0x01], [0x03], [0x17], [0x18, 0xff], [0x19, 0x01, 0x00], [0x1a, 0, 0, 1, 0], [0x1b, 0, 0, 0, 1, 0, 0, 0, 0],
  [0x1c], [0x1f], [0x20], [0x38, 0x10], [0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0x40], [0x41, 0x00], [0x48, 1, 2, 3, 4, 5, 6, 7, 8], [0x58, 0x20], [0x5a, 0xff, 0xff, 0xff, 0xff], [0x5f],
  [0x60], [0x61, 0x76], [0x61, 0x74], [0x62, 0x69, 0x64], [0x61, 0x62], [0x61, 0x6e], [0x61, 0x6f], [0x64, 0x6c, 0x69, 0x73, 0x74],
  [0x69, 0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f], [0x78, 0x05], [0x7a, 0, 0, 0x10, 0], [0x7f],
  [0x80], [0x81], [0x83], [0x98, 0x03], [0x9a, 0xff, 0xff, 0xff, 0xff], [0x9b, 0, 0, 0, 1, 0, 0, 0, 0], [0x9f],
  [0xa0], [0xa1], [0xa2], [0xa3], [0xb8, 0x02], [0xba, 0x7f, 0xff, 0xff, 0xff], [0xbf],
  [0xc0], [0xc1], [0xc2], [0xc3], [0xc4], [0xc5], [0xd8, 0x1b], [0xd8, 0x1c], [0xd8, 0x1d], [0xd8, 0x33], [0xd8, 0x06],
  [0xd8, 0x40], [0xd8, 0x55], [0xd8, 0x69], [0xd9, 0x01, 0x02], [0xd9, 0x01, 0x03], [0xd9, 0xd9, 0xf7],
  [0xd9, 0xdf, 0xff], [0xd9, 0xdf, 0xfe], [0xd9, 0xdf, 0xf9], [0xd9, 0xe0, 0x00], [0xda, 0, 1, 0, 0], [0xdb, 0, 0, 0, 0, 0, 0, 0, 1],
  [0xe0], [0xf4], [0xf5], [0xf6], [0xf7], [0xf8, 0x20], [0xf9, 0x3c, 0x00], [0xfa, 0x7f, 0xc0, 0, 0],
  [0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0], [0xfc], [0xff],
  // a plausible envelope start: {"v": 1, "t": 3, ...
  [0xa3, 0x61, 0x76, 0x01, 0x61, 0x74, 0x03],
  [0xa4, 0x61, 0x76, 0x01, 0x61, 0x74, 0x18, 0xf8, 0x61, 0x62, 0x40],
];

const cborishBytes = fc
  .array(fc.oneof(fc.constantFrom(...SNIPPETS), fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 3 })), { maxLength: 40 })
  .map((parts) => new Uint8Array(parts.flat()));

const anyBytes = fc.oneof(fc.uint8Array({ maxLength: 64 }), cborishBytes);

const keyArb = fc.oneof(
  fc.constantFrom('v', 't', 'id', 'b', 'n', 'i', 's', 'e', 'flag', 'list', 'o', 'deep', 'z', 'k', 'payload', 'realm', 'role', 'port', 'agent', 'code', 'message'),
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', ''),
  fc.string({ maxLength: 6 }),
);

const leafArb = fc.oneof(
  fc.integer(),
  fc.constantFrom(0, 1, 2, 3, -1, 255, 256, 65535, 2 ** 32, 2 ** 53, -(2 ** 53), -0, NaN, Infinity, -Infinity, 0.5),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.string({ maxLength: 12 }),
  fc.string({ maxLength: 2000 }),
  fc.uint8Array({ maxLength: 40 }),
  fc.bigInt({ min: -(2n ** 64n) + 1n, max: 2n ** 64n - 1n }),
);

const { value: valueArb } = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leafArb, tie('arr'), tie('obj')),
  arr: fc.array(tie('value'), { maxLength: 5 }),
  obj: fc.dictionary(keyArb, tie('value'), { maxKeys: 6, noNullPrototype: true }),
}));

/** Mostly well-formed envelopes with random fields, so that validation is exercised in depth. */
const envelopeArb = fc
  .tuple(
    fc.oneof({ weight: 5, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: valueArb }),
    fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...TYPES) }, { weight: 1, arbitrary: valueArb }),
    fc.option(fc.oneof(fc.nat({ max: 0xffffffff }), valueArb), { nil: undefined }),
    fc.dictionary(keyArb, valueArb, { maxKeys: 8, noNullPrototype: true }),
    fc.record(
      {
        b: fc.oneof(fc.uint8Array({ maxLength: 10 }), valueArb),
        n: fc.oneof(fc.nat({ max: 120 }), valueArb),
        s: fc.oneof(fc.string({ maxLength: 8 }), valueArb),
        e: fc.oneof(fc.constantFrom('x', 'y', 1, 'z'), valueArb),
        list: fc.oneof(fc.array(fc.record({ k: fc.nat({ max: 4 }) }), { maxLength: 4 }), valueArb),
        o: fc.oneof(fc.record({ deep: fc.record({ z: valueArb }) }), valueArb),
        realm: fc.oneof(fc.string({ maxLength: 70 }), valueArb),
        role: fc.constantFrom('node', 'client', 'x'),
        port: fc.oneof(fc.nat({ max: 70000 }), valueArb),
      },
      { requiredKeys: [] },
    ),
  )
  .map(([v, t, id, extra, fields]) => {
    const msg: Record<string, unknown> = { ...extra, ...fields, v, t };
    if (id !== undefined) msg.id = id;
    return msg;
  });

/** Valid encoded messages of the core and fuzz types, to be mutated. */
const validBodies: Uint8Array[] = [
  { v: 1, t: 1, id: 1, realm: 'default', role: 'node', port: 9443, agent: 'macula' },
  { v: 1, t: 2, id: 1, realm: 'r', role: 'client', port: 0 },
  { v: 1, t: 3, id: 42 },
  { v: 1, t: 4, id: 42 },
  { v: 1, t: 5, id: 9, code: 'MACULA_ERR_X', message: 'boom' },
  { v: 1, t: FUZZ.type, b: new Uint8Array([1, 2]), n: 7, s: 'abc', list: [{ k: 1 }, { k: 2 }], o: { deep: { z: [1, { q: 'r' }] } }, payload: { a: [1, 2, 3] } },
].map((m) => raw.encode(m));

const mutationArb = fc.record({
  base: fc.nat({ max: validBodies.length - 1 }),
  edits: fc.array(
    fc.record({
      op: fc.constantFrom('flip', 'set', 'insert', 'delete', 'truncate'),
      pos: fc.nat(),
      byte: fc.integer({ min: 0, max: 255 }),
      bit: fc.nat({ max: 7 }),
    }),
    { minLength: 1, maxLength: 4 },
  ),
});

function mutate(base: Uint8Array, edits: { op: string; pos: number; byte: number; bit: number }[]): Uint8Array {
  let bytes = [...base];
  for (const e of edits) {
    const at = bytes.length === 0 ? 0 : e.pos % bytes.length;
    switch (e.op) {
      case 'flip':
        if (bytes.length > 0) bytes[at] = bytes[at]! ^ (1 << e.bit);
        break;
      case 'set':
        if (bytes.length > 0) bytes[at] = e.byte;
        break;
      case 'insert':
        bytes.splice(at, 0, e.byte);
        break;
      case 'delete':
        bytes.splice(at, 1);
        break;
      case 'truncate':
        bytes = bytes.slice(0, at);
        break;
    }
  }
  return new Uint8Array(bytes);
}

// ---- properties --------------------------------------------------------------

describe('fuzz: decodeMessage', () => {
  test('random byte strings: a valid message or a ProtocolError', () => {
    let errors = 0;
    fc.assert(
      fc.property(anyBytes, (body) => {
        if (expectMessageOrProtocolError(() => decodeMessage(body)) instanceof ProtocolError) errors++;
      }),
      { seed: SEED, numRuns: 5000 },
    );
    assert.ok(errors > 4000, 'nearly all random inputs are rejected');
  });

  test('random CBOR values: a valid message or a ProtocolError', () => {
    fc.assert(
      fc.property(valueArb, (value) => {
        const body = tryEncode(value);
        if (body === undefined) return;
        expectMessageOrProtocolError(() => decodeMessage(body));
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  test('random envelopes: a valid message or a ProtocolError, and some of each', () => {
    const kinds = new Map<string, number>();
    let valid = 0;
    fc.assert(
      fc.property(envelopeArb, (msg) => {
        const body = tryEncode(msg);
        if (body === undefined) return;
        const outcome = expectMessageOrProtocolError(() => decodeMessage(body));
        if (outcome instanceof ProtocolError) kinds.set(outcome.kind, (kinds.get(outcome.kind) ?? 0) + 1);
        else valid++;
      }),
      { seed: SEED, numRuns: 4000 },
    );
    assert.ok(valid > 0, 'some random envelopes are valid');
    for (const kind of ['bad_version', 'bad_envelope', 'invalid_message']) assert.ok((kinds.get(kind) ?? 0) > 0, `some ${kind}`);
  });

  test('mutated valid messages: a valid message or a ProtocolError', () => {
    fc.assert(
      fc.property(mutationArb, ({ base, edits }) => {
        expectMessageOrProtocolError(() => decodeMessage(mutate(validBodies[base]!, edits)));
      }),
      { seed: SEED, numRuns: 4000 },
    );
  });

  test('the decoder is not left in a bad state by any of the inputs above', () => {
    for (const body of validBodies) checkValidMessage(decodeMessage(body));
  });
});

describe('fuzz: FrameDecoder + decodeMessage over a byte stream', () => {
  /** Feeds `bytes` in chunks and decodes every frame; stops at the first error, which must be a ProtocolError. */
  function run(bytes: Uint8Array, cuts: number[], maxFrameSize: number): { frames: number; error?: ProtocolError } {
    const start = performance.now();
    const decoder = new FrameDecoder(maxFrameSize);
    const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
    let prev = 0;
    let frames = 0;
    try {
      for (const p of [...points, bytes.length]) {
        for (const body of decoder.push(bytes.subarray(prev, p))) {
          checkValidMessage(decodeMessage(body));
          frames++;
        }
        prev = p;
      }
      decoder.end();
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw new assert.AssertionError({ message: `a non-protocol error escaped: ${String(err)}`, actual: err });
      return { frames, error: err };
    } finally {
      assert.ok(performance.now() - start < MAX_MS_PER_INPUT);
    }
    return { frames };
  }

  test('random bytes as a stream', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 10 }), fc.integer({ min: 0, max: 512 }), (bytes, cuts, max) => {
        run(bytes, cuts, max);
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  test('well-framed random bodies (valid and invalid) as a stream', () => {
    const bodyArb = fc.oneof(
      anyBytes,
      envelopeArb.map((m) => tryEncode(m) ?? new Uint8Array(0)),
      fc.constantFrom(...validBodies),
      mutationArb.map(({ base, edits }) => mutate(validBodies[base]!, edits)),
    );
    let clean = 0;
    fc.assert(
      fc.property(fc.array(bodyArb, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), fc.boolean(), (bodies, cuts, chopTail) => {
        const frames = bodies.map((b) => encodeFrame(b, 1 << 20));
        let bytes = new Uint8Array(Buffer.concat(frames));
        if (chopTail && bytes.length > 0) bytes = bytes.subarray(0, bytes.length - 1);
        const result = run(bytes, cuts, 4096);
        if (result.error === undefined) clean++;
      }),
      { seed: SEED, numRuns: 2000 },
    );
    assert.ok(clean > 0);
  });

  test('random frame headers: over-limit lengths are frame_too_large', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.uint8Array({ maxLength: 40 }), (length, rest) => {
        const h = new Uint8Array(4);
        writeFrameHeader(h, 0, length);
        const result = run(new Uint8Array(Buffer.concat([h, rest])), [], 1000);
        if (length > 1000) assert.equal(result.error?.kind, 'frame_too_large');
        else if (length > rest.length) assert.equal(result.error?.kind, 'truncated_frame');
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });
});

describe('fuzz: FramedStream.read over random input', () => {
  test('yields valid messages, then at most one counted ProtocolError, and resets the stream on it', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.constantFrom(...validBodies).map((b) => encodeFrame(b))), { maxLength: 6 }),
        async (chunks) => {
          const stream = createFakeStream();
          const seen: ProtocolError[] = [];
          const framed = new FramedStream(stream, { maxFrameSize: 2048, onProtocolError: (err) => seen.push(err) });
          for (const c of chunks) stream.inject(c);
          stream.injectEnd();
          let error: unknown;
          try {
            for (let i = 0; i < 100; i++) {
              const msg = await framed.read();
              if (msg === null) break;
              checkValidMessage(msg);
            }
          } catch (err) {
            error = err;
          }
          if (error === undefined) {
            assert.equal(seen.length, 0);
            assert.equal(stream.resetCalls, 0);
            assert.equal(await framed.read(), null);
          } else {
            assert.ok(error instanceof ProtocolError, `a non-protocol error escaped: ${String(error)}`);
            assert.deepEqual(seen, [error]);
            assert.equal(stream.resetCalls, 1);
            // later reads report the same error without counting it again
            await assert.rejects(framed.read(), (err) => err === error);
            assert.equal(seen.length, 1);
          }
        },
      ),
      { seed: SEED, numRuns: 1000 },
    );
  });
});
