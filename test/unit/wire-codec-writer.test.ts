/**
 * The writer of encodeMessage and encodeBody against cbor-x: for every value
 * it is given, the frame body must be the bytes cbor-x writes for the same
 * message (`{ ...fields, v, id? }` with the same options), and a body the
 * bytes cbor-x writes for the value, so they decode to the same value —
 * whether the writer handled the value itself or passed it on.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Encoder } from 'cbor-x/encode';
import fc from 'fast-check';
import { appendFrame, decodeBody, decodeMessage, encodeBody, encodeMessage, frameBody, newFrameBuffer, type MessageFields } from '../../src/wire/codec.js';
import { encodeFrame } from '../../src/wire/frame.js';
import { PUBLISH } from '../../src/pubsub/messages.js';
import { RPC_CALL } from '../../src/rpc/messages.js';
import { defineMessage } from '../../src/wire/messages.js';
import { f } from '../../src/wire/schema.js';
import { EDGE_NUMBERS, EDGE_STRINGS, str, value } from '../helpers/cbor-values.js';

const reference = new Encoder({ useRecords: false, mapsAsObjects: true, variableMapSize: true, tagUint8Array: false });
/** What the frame body of `fields` is when cbor-x encodes the whole message. */
const expected = (fields: Record<string, unknown>, id?: number): Uint8Array => {
  const { v: _v, id: _id, ...rest } = fields;
  return Uint8Array.from(reference.encode({ ...rest, v: 1, ...(id !== undefined && { id }) }));
};

// A type whose fields are not declared (all written by the writer), and one whose fields are application values (all left to cbor-x).
const T_OPEN = defineMessage(248, 'TEST_WRITER_OPEN', {});
const T_APP = defineMessage(247, 'TEST_WRITER_APP', { d: f.any(), a: f.opt(f.any()) });

const fieldName = fc.oneof(fc.constantFrom('tp', 's', 'o', 'h', 'g', 'd', 'v', 'id', '1', 'toString'), str);

function assertSameAsCborX(msg: MessageFields, id?: number): void {
  const body = frameBody(encodeMessage(msg), id);
  assert.deepEqual(body, expected(msg, id));
  assert.deepEqual(decodeBody(body), decodeBody(expected(msg, id)));
}

describe('codec: the field writer writes what cbor-x writes', () => {
  test('random fields of every kind, nested arrays and maps, with and without an id', () => {
    fc.assert(
      fc.property(fc.dictionary(fieldName, value, { maxKeys: 8 }), fc.option(fc.nat(0xffff_ffff)), (fields, id) => {
        assertSameAsCborX({ ...fields, t: T_OPEN.type }, id ?? undefined);
      }),
      { numRuns: 500 },
    );
  });

  test('edge integers, floats and strings as fields, array items and map values', () => {
    for (const v of [...EDGE_NUMBERS, ...EDGE_STRINGS]) {
      assertSameAsCborX({ t: T_OPEN.type, x: v, l: [v, [v]], m: { k: v, [typeof v === 'string' ? v : 'n']: { v } } });
    }
  });

  test('strings of every length up to 300 units, with multi-byte characters and lone surrogates anywhere', () => {
    const units = ['a', 'é', '€', '😀', '\ud800', '\udfff'];
    for (let n = 0; n <= 300; n++) {
      for (const [i, u] of units.entries()) {
        const s = `${units[(i + 1) % units.length]!}${'x'.repeat(n)}`.slice(0, n) + u;
        assertSameAsCborX({ t: T_OPEN.type, [s]: s });
      }
    }
  });

  test('application fields (f.any()) and values nested deeper than the writer goes are written as cbor-x writes them', () => {
    const deep = { a: [{ b: [{ c: [{ d: 'deep' }] }] }] };
    fc.assert(
      fc.property(value, value, (d, a) => {
        assertSameAsCborX({ t: T_APP.type, d, a, deep });
      }),
      { numRuns: 200 },
    );
  });

  test('encodeBody: any value, as cbor-x writes it, kept intact while more is written', () => {
    const kept: [Uint8Array, Uint8Array][] = [];
    fc.assert(
      fc.property(value, (v) => {
        const body = encodeBody(v);
        const want = Uint8Array.from(reference.encode(v));
        assert.deepEqual(Uint8Array.from(body), want);
        kept.push([body, want]);
      }),
      { numRuns: 500 },
    );
    for (const [body, want] of kept) assert.deepEqual(Uint8Array.from(body), want);
    assert.throws(() => encodeBody([1, () => 1]));
    assert.deepEqual(Uint8Array.from(encodeBody('after')), Uint8Array.from(reference.encode('after')));
  });

  test('raw fields are placed as encoded, after the others', () => {
    fc.assert(
      fc.property(value, str, fc.nat(), (d, tp, s) => {
        const msg = encodeMessage({ t: PUBLISH.type, tp, s }, { d: encodeBody(d) });
        assert.deepEqual(frameBody(msg), expected({ t: PUBLISH.type, tp, s, d }));
      }),
      { numRuns: 200 },
    );
  });

  test('a message received (its v and id) is sent on with a fresh envelope', () => {
    const received = decodeMessage(frameBody({ t: RPC_CALL.type, p: 'svc.echo', a: [1, 'two'], d: 5000 }, 7));
    assert.deepEqual(frameBody(encodeMessage(received), 9), expected({ t: RPC_CALL.type, p: 'svc.echo', a: [1, 'two'], d: 5000 }, 9));
    assert.deepEqual(frameBody(encodeMessage(received)), expected({ t: RPC_CALL.type, p: 'svc.echo', a: [1, 'two'], d: 5000 }));
  });

  test('messages stay intact while many more are written after them, small and large', () => {
    const kept: [ReturnType<typeof encodeMessage>, Uint8Array][] = [];
    for (let i = 0; i < 3000; i++) {
      const big = i % 500 === 7;
      const fields = { t: T_OPEN.type, i, s: 'x'.repeat(i % 90), b: new Uint8Array(big ? 40_000 : i % 200).fill(i & 0xff) };
      kept.push([encodeMessage(fields, i % 3 === 0 ? { d: encodeBody(i) } : undefined), expected(i % 3 === 0 ? { ...fields, d: i } : fields)]);
    }
    for (const [msg, bytes] of kept) assert.deepEqual(frameBody(msg), bytes);
  });

  test('appendFrame: frames appended one after another, the buffer growing, are the frames of what cbor-x writes', () => {
    const out = newFrameBuffer(16);
    const want: Uint8Array[] = [];
    for (let i = 0; i < 400; i++) {
      // up to 40 fields: maps of 24 pairs or more have a 2-byte head
      const fields: MessageFields = { t: T_OPEN.type, i };
      for (let k = 0; k < i % 41; k++) fields[`k${k}`] = k % 2 === 0 ? k * 1000 : 'x'.repeat(k);
      if (i % 97 === 5) fields.b = new Uint8Array(50_000).fill(i);
      const id = i % 3 === 0 ? i * 65_537 : undefined;
      const encoded = i % 2 === 0;
      const size = appendFrame(out, encoded ? encodeMessage(fields) : fields, id);
      const frame = encodeFrame(expected(fields, id));
      assert.equal(size, frame.length - 4);
      want.push(frame);
      if (i % 50 === 0) {
        // a value cbor-x refuses: nothing of it is appended
        const before = out.len;
        assert.throws(() => appendFrame(out, { t: T_OPEN.type, a: 'x'.repeat(100), f: () => 1 }));
        assert.equal(out.len, before);
      }
    }
    // the message's own id is its envelope's unless one is given
    appendFrame(out, { t: T_OPEN.type, id: 12 });
    want.push(encodeFrame(expected({ t: T_OPEN.type }, 12)));
    assert.deepEqual(out.buf.subarray(0, out.len), new Uint8Array(Buffer.concat(want)));
    // the writer's own slab was left as it was
    assertSameAsCborX({ t: T_OPEN.type, a: 'after' });
  });

  test('a value cbor-x refuses throws and leaves nothing behind for the next message', () => {
    assert.throws(() => encodeMessage({ t: T_OPEN.type, a: 'x'.repeat(100), f: () => 1 }));
    assert.throws(() => encodeMessage({ t: T_OPEN.type, a: [Symbol('s')] }));
    assertSameAsCborX({ t: T_OPEN.type, a: 'after' });
  });
});
