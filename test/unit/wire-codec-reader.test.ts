/**
 * The body reader of decodeBody against cbor-x: for any body, decodeBody
 * returns what cbor-x returns (deeply, with the same classes and
 * prototypes, byte strings as views of the body as cbor-x returns them) or
 * throws bad_cbor with cbor-x's reason; and the reader itself reads the
 * bodies messages are made of, leaving the rest to cbor-x.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Decoder } from 'cbor-x/decode';
import { Encoder } from 'cbor-x/encode';
import fc from 'fast-check';
import { decodeBody, NOT_READ, readBody } from '../../src/wire/codec.js';
import { ProtocolError } from '../../src/util/errors.js';
import { EDGE_NUMBERS, EDGE_STRINGS, value } from '../helpers/cbor-values.js';

const options = { useRecords: false, mapsAsObjects: true, variableMapSize: true, tagUint8Array: false } as const;
const encoder = new Encoder(options);
const reference = new Decoder(options);

type Outcome = { value: unknown } | { error: string };

function cborX(body: Uint8Array): Outcome {
  try {
    return { value: reference.decode(body) };
  } catch (err) {
    return { error: `undecodable CBOR body (${(err as Error).message})` };
  }
}

/** Byte strings are the same views of the same buffer, at the same offset. */
function assertSameViews(got: unknown, want: unknown): void {
  if (want instanceof Uint8Array) {
    assert.ok(got instanceof Uint8Array);
    assert.equal(got.buffer, want.buffer);
    assert.equal(got.byteOffset, want.byteOffset);
  } else if (Array.isArray(want)) {
    want.forEach((w, i) => assertSameViews((got as unknown[])[i], w));
  } else if (typeof want === 'object' && want !== null && Object.getPrototypeOf(want) === Object.prototype) {
    for (const key of Object.keys(want)) assertSameViews((got as Record<string, unknown>)[key], (want as Record<string, unknown>)[key]);
  }
}

/** Dates (tag 0 or 1, from mutated bodies) as their times, anywhere in `v`, so that two invalid dates compare equal. */
function datesAsTimes(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || ArrayBuffer.isView(v)) return v;
  if (v instanceof Date) return { date: String(v.getTime()) };
  if (Array.isArray(v)) return v.map(datesAsTimes);
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [datesAsTimes(k), datesAsTimes(x)]));
  if (v instanceof Set) return new Set([...v].map(datesAsTimes));
  const out = Object.create(Object.getPrototypeOf(v) as object | null) as Record<string, unknown>;
  for (const key of Object.keys(v)) out[key] = datesAsTimes((v as Record<string, unknown>)[key]);
  return out;
}

/** decodeBody(body) ends as cbor-x alone ends: the same value, or bad_cbor with cbor-x's reason. */
function assertAsCborX(body: Uint8Array): void {
  const want = cborX(body);
  let got: Outcome;
  try {
    got = { value: decodeBody(body) };
  } catch (err) {
    assert.ok(err instanceof ProtocolError, `not a ProtocolError: ${String(err)}`);
    assert.equal(err.kind, 'bad_cbor');
    got = { error: err.message };
  }
  assert.deepStrictEqual(datesAsTimes(got), datesAsTimes(want));
  if ('value' in want) assertSameViews((got as { value: unknown }).value, want.value);
}

/** `bytes` as the node receives a frame body: a view into a larger chunk (a Buffer), and as a Uint8Array of its own. */
function asReceived(bytes: Uint8Array): Uint8Array[] {
  const chunk = Buffer.alloc(bytes.length + 16, 0xee);
  chunk.set(bytes, 7);
  return [chunk.subarray(7, 7 + bytes.length), Uint8Array.from(bytes)];
}

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s/g, ''), 'hex'));

/** A map `{ k: <item> }` around the item in hex. */
const inMap = (item: string): Uint8Array => hex(`a1 616b ${item}`);

describe('codec: decodeBody reads what cbor-x reads', () => {
  test('random values encoded by cbor-x decode to the same value, classes and prototypes', () => {
    fc.assert(
      fc.property(value, (v) => {
        for (const body of asReceived(encoder.encode(v))) assertAsCborX(body);
      }),
      { numRuns: 1000 },
    );
  });

  test('random messages (maps of random fields) decode the same', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), value, { maxKeys: 8 }), (fields) => {
        for (const body of asReceived(encoder.encode({ ...fields, t: 16, v: 1 }))) assertAsCborX(body);
      }),
      { numRuns: 500 },
    );
  });

  test('valid bodies flipped, truncated or extended end as with cbor-x', () => {
    const mutated = fc
      .tuple(value, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ minLength: 1, maxLength: 8 }), fc.constantFrom('flip', 'set', 'truncate', 'extend', 'insert'))
      .map(([v, where, byte, extra, how]) => {
        const body = Uint8Array.from(encoder.encode({ t: 16, v: 1, d: v }));
        const i = where % body.length;
        switch (how) {
          case 'flip':
            body[i] ^= 1 << (byte & 7);
            return body;
          case 'set':
            body[i] = byte;
            return body;
          case 'truncate':
            return body.subarray(0, i);
          case 'extend':
            return Uint8Array.from([...body, ...extra]);
          default:
            return Uint8Array.from([...body.subarray(0, i), ...extra, ...body.subarray(i)]);
        }
      });
    fc.assert(
      fc.property(mutated, (body) => {
        for (const b of asReceived(body)) assertAsCborX(b);
      }),
      { numRuns: 3000 },
    );
  });

  test('random bytes end as with cbor-x', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (body) => {
        for (const b of asReceived(body)) assertAsCborX(b);
      }),
      { numRuns: 3000 },
    );
  });

  test('text strings of random bytes (invalid UTF-8, BOMs) decode as cbor-x decodes them, short and long', () => {
    const utf8ish = fc.array(fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0xef, 0xbb, 0xbf, 0xed, 0xa0, 0xf0, 0xf4, 0x90, 0x80, 0xc2, 0xe0)), { maxLength: 140 });
    fc.assert(
      fc.property(utf8ish, fc.boolean(), (content, bom) => {
        const bytes = bom ? [0xef, 0xbb, 0xbf, ...content] : content;
        const head = bytes.length < 24 ? [0x60 | bytes.length] : [0x78, bytes.length];
        const body = Uint8Array.from([0xa1, 0x61, 0x6b, ...head, ...bytes]);
        for (const b of asReceived(body)) assertAsCborX(b);
        assert.notEqual(readBody(body), NOT_READ);
      }),
      { numRuns: 3000 },
    );
  });

  test('short strings read again are the same, whatever was read in between (colliding in the cache too)', () => {
    const strings = Array.from({ length: 5000 }, (_, i) => i.toString(36).padStart((i % 16) + 1, 'k'));
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < strings.length; i += 7) {
        const s = strings[(i * (round + 1)) % strings.length]!;
        const body = encoder.encode({ [s]: s, [`${s}é`]: s.slice(1) });
        assert.notEqual(readBody(body), NOT_READ);
        assertAsCborX(body);
      }
    }
  });

  test('every one-byte text string, as a key and as a value, decodes as cbor-x decodes it', () => {
    for (let c = 0; c < 0x100; c++) {
      const body = hex(`a2 61${c.toString(16).padStart(2, '0')} 61${c.toString(16).padStart(2, '0')} 6178 6161`);
      assert.notEqual(readBody(body), NOT_READ);
      for (const b of asReceived(body)) assertAsCborX(b);
    }
  });

  test('edge numbers and strings, alone and in maps', () => {
    for (const v of [...EDGE_NUMBERS, ...EDGE_STRINGS, 2 ** 64, -(2 ** 64)]) {
      for (const body of [...asReceived(encoder.encode(v)), ...asReceived(encoder.encode({ k: v, l: [v] }))]) assertAsCborX(body);
    }
  });

  test('what the reader leaves to cbor-x still decodes as cbor-x decodes it', () => {
    const leftToCborX = [
      inMap('1b 0000000100000000'), // 64-bit unsigned: a bigint
      inMap('3b 0000000100000000'), // 64-bit negative
      inMap('f9 3c00'), // 16-bit float
      inMap('f0'), // simple value 16
      inMap('f8 20'), // simple value 32
      inMap('c1 1a 65000000'), // tag 1 (a date)
      inMap('d8 40 43 010203'), // tag 64 (a Uint8Array)
      inMap('9f 01 02 ff'), // indefinite-length array
      inMap('bf 6161 01 ff'), // indefinite-length map
      inMap('5f 41 01 ff'), // indefinite-length byte string
      hex('a1 01 02'), // an integer key
      hex('a1 f6 02'), // a null key
      hex('a1 69 5f5f70726f746f5f5f a1 6161 01'), // "__proto__", which cbor-x renames
      inMap('81'.repeat(12) + '01'), // nested deeper than the reader goes
      inMap('5b 0000000000000001 00'), // a 64-bit length
    ];
    for (const body of leftToCborX) {
      assert.equal(readBody(body), NOT_READ, Buffer.from(body).toString('hex'));
      for (const b of asReceived(body)) assertAsCborX(b);
    }
  });

  test('the bodies messages are made of are read without cbor-x', () => {
    const read = [
      { t: 16, v: 1, id: 7, tp: 'a.topic', s: 123_456, o: new Uint8Array(32).fill(3), d: new Uint8Array(100).fill(7) },
      { t: 16, v: 1, h: { 'content-type': 'text/plain', 'é€😀': 'x'.repeat(200) }, a: [1, -1, -(2 ** 32), 2 ** 32 - 1, 0.5, true, false, null, undefined, [[[]]]] },
      { t: 16, v: 1, f32: 0, 1: 'integer-like keys first', [' k'.repeat(100)]: 'a long key' },
    ];
    for (const msg of read) {
      const body = encoder.encode(msg);
      assert.notEqual(readBody(body), NOT_READ);
      assertAsCborX(body);
    }
    assert.deepStrictEqual(readBody(inMap('fa 3fc00000')), { k: 1.5 }); // a 32-bit float
    assert.deepStrictEqual(readBody(hex('a2 6161 01 6161 02')), { a: 2 }); // a key repeated: assigned again, as cbor-x does
    assertAsCborX(hex('a2 6161 01 6161 02'));
    assertAsCborX(hex('a3 6162 01 6161 02 6162 03'));
    // The envelope's keys, stored by name, repeated and in any order: the same keys in the same order as cbor-x.
    for (const h of ['a3 6174 01 6176 02 6174 03', 'a3 6176 01 6164 40 6174 02', 'a2 6164 01 6176 02']) {
      assertAsCborX(hex(h));
      assert.deepStrictEqual(Object.keys(readBody(hex(h)) as object), Object.keys(reference.decode(hex(h)) as object), h);
    }
  });

  test('byte strings of a body in a Buffer, a Buffer subclass or a Uint8Array subclass are the views cbor-x makes', () => {
    class SubBuffer extends Buffer {}
    class Bytes extends Uint8Array {}
    const body = encoder.encode({ t: 16, v: 1, d: new Uint8Array(100).fill(7), l: [new Uint8Array(3)] });
    const chunk = Buffer.alloc(body.length + 16);
    chunk.set(body, 5);
    const sub = Object.setPrototypeOf(chunk.subarray(5, 5 + body.length), SubBuffer.prototype) as Uint8Array;
    const bytes = new Bytes(body.length + 4).subarray(4);
    bytes.set(body);
    for (const b of [chunk.subarray(5, 5 + body.length), sub, bytes]) {
      assertAsCborX(b);
      const got = readBody(b) as { d: Uint8Array; l: Uint8Array[] };
      const want = reference.decode(b) as { d: Uint8Array; l: Uint8Array[] };
      assert.equal(Object.getPrototypeOf(got.d), Object.getPrototypeOf(want.d));
      assert.equal(Object.getPrototypeOf(got.l[0]), Object.getPrototypeOf(want.l[0]));
    }
  });

  test('truncated bodies, trailing bytes and lengths past the end are bad_cbor', () => {
    for (const h of ['a2 6161 01', 'a1 6161 5a ffffffff', 'a1 6161 7a 00100000 41', 'a1 6161 9a 00100000', 'ba 00100000', 'a1 6161 01 00', '', 'a1 6161 fb 3ff0']) {
      assert.throws(() => decodeBody(hex(h)), (err: unknown) => err instanceof ProtocolError && err.kind === 'bad_cbor', h);
      assertAsCborX(hex(h));
    }
  });
});
