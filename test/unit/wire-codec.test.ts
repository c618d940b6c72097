import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Encoder } from 'cbor-x/encode';
import { FrameTooLargeError, ProtocolError, type ProtocolErrorKind } from '../../src/util/errors.js';
import { decodeBody, decodeMessage, encodeBody } from '../../src/wire/codec.js';
import {
  defineMessage,
  ERROR,
  HELLO,
  HELLO_ACK,
  MAX_REQUEST_ID,
  messageDef,
  messageName,
  PING,
  PONG,
  PROTOCOL_VERSION,
  validateMessage,
} from '../../src/wire/messages.js';
import { checkFields, f, isPlainMap } from '../../src/wire/schema.js';

// Test-only message types, one per group of schema kinds (high numbers, unused by the protocol).
const T_BYTES = defineMessage(250, 'TEST_BYTES', {
  fixed: f.bytes(32, 32),
  range: f.bytes(0, 4),
  maybe: f.opt(f.bytes(1, 8)),
});
const T_NUMBERS = defineMessage(251, 'TEST_NUMBERS', {
  u: f.uint(1000),
  big: f.opt(f.uint()),
  i: f.int(-10, 10),
});
const T_SCALARS = defineMessage(252, 'TEST_SCALARS', {
  s: f.str(1, 8),
  e: f.enum('a', 'b', 3),
  flag: f.bool(),
  note: f.opt(f.str(0, 4)),
});
const T_ARRAYS = defineMessage(253, 'TEST_ARRAYS', {
  list: f.arr(f.uint(255), 4),
  ids: f.opt(f.arr(f.bytes(2, 2), 3)),
  grid: f.arr(f.arr(f.str(0, 2), 2), 2),
});
const T_OBJECTS = defineMessage(254, 'TEST_OBJECTS', {
  o: f.obj({ a: f.uint(10), b: f.opt(f.str(0, 4)), inner: f.opt(f.obj({ x: f.bool() })) }),
  items: f.opt(f.arr(f.obj({ k: f.str(1, 3) }), 3)),
});
const T_ANY = defineMessage(255, 'TEST_ANY', {
  payload: f.any(),
  extra: f.opt(f.any()),
});
const T_INHERITED = defineMessage(249, 'TEST_INHERITED', { toString: f.str(1, 10) });

/** Encodes any value as CBOR exactly like the codec does (for crafting peer input). */
const raw = new Encoder({ useRecords: false, mapsAsObjects: true, variableMapSize: true, tagUint8Array: false });
const cbor = (value: unknown): Uint8Array => raw.encode(value);
const bytes = (...b: number[]): Uint8Array => new Uint8Array(b);
const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

function isProtocolError(kind: ProtocolErrorKind, messageIncludes?: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof ProtocolError, `expected a ProtocolError, got ${String(err)}`);
    assert.ok(!(err instanceof FrameTooLargeError));
    assert.equal(err.kind, kind, `kind of "${err.message}"`);
    assert.equal(err.code, 'MACULA_ERR_PROTOCOL');
    if (messageIncludes !== undefined) assert.ok(err.message.includes(messageIncludes), `"${err.message}" mentions ${messageIncludes}`);
    return true;
  };
}

/** Decodes a message given as a plain value (envelope included), through real CBOR bytes. */
const decodeValue = (value: unknown) => decodeMessage(cbor(value));

function rejects(value: unknown, kind: ProtocolErrorKind, messageIncludes?: string): void {
  assert.throws(() => decodeValue(value), isProtocolError(kind, messageIncludes));
}

const id32 = new Uint8Array(32).fill(9);
const validBytesMsg = () => ({ v: 1, t: T_BYTES.type, fixed: id32, range: bytes(1, 2) });
const validNumbersMsg = () => ({ v: 1, t: T_NUMBERS.type, u: 5, i: -3 });
const validScalarsMsg = () => ({ v: 1, t: T_SCALARS.type, s: 'hi', e: 'a', flag: false });
const validArraysMsg = () => ({ v: 1, t: T_ARRAYS.type, list: [1, 2], grid: [['a'], []] });
const validObjectsMsg = () => ({ v: 1, t: T_OBJECTS.type, o: { a: 1 } });

describe('codec: round trips', () => {
  test('core messages survive encode + decode + validate', () => {
    const hello = { v: PROTOCOL_VERSION, t: HELLO.type, id: 1, realm: 'default', role: 'node', port: 9443, agent: 'macula/0.1.0' };
    assert.deepEqual(decodeValue(hello), hello);
    const helloNoAgent = { v: 1, t: HELLO.type, realm: 'r', role: 'client', port: 0 };
    assert.deepEqual(decodeValue(helloNoAgent), helloNoAgent);
    const ack = { v: 1, t: HELLO_ACK.type, id: MAX_REQUEST_ID, realm: 'r', role: 'node', port: 65535 };
    assert.deepEqual(decodeValue(ack), ack);
    assert.deepEqual(decodeValue({ v: 1, t: PING.type, id: 0 }), { v: 1, t: PING.type, id: 0 });
    assert.deepEqual(decodeValue({ v: 1, t: PONG.type, id: 7 }), { v: 1, t: PONG.type, id: 7 });
    const err = { v: 1, t: ERROR.type, id: 3, code: 'MACULA_ERR_BUSY', message: '' };
    assert.deepEqual(decodeValue(err), err);
  });

  test('byte strings come back as Uint8Array with the same content', () => {
    const msg = decodeValue({ ...validBytesMsg(), maybe: bytes(1, 2, 3) });
    assert.ok(msg.fixed instanceof Uint8Array);
    assert.deepEqual([...(msg.fixed as Uint8Array)], [...id32]);
    assert.deepEqual([...(msg.maybe as Uint8Array)], [1, 2, 3]);
  });

  test('encodeBody/decodeBody round-trip plain values', () => {
    for (const v of [0, -1, 2 ** 40, 1.5, 'x', '', true, null, [1, [2, [3]]], { a: { b: 'c' } }]) {
      assert.deepEqual(decodeBody(encodeBody(v)), v);
    }
  });

  test('validateMessage returns the very object it was given', () => {
    const m = { v: 1, t: PING.type };
    assert.equal(validateMessage(m), m);
  });
});

describe('codec: undecodable CBOR is bad_cbor', () => {
  const valid = cbor({ v: 1, t: PING.type });

  const cases: [string, Uint8Array][] = [
    ['an empty body', bytes()],
    ['a message cut short', valid.subarray(0, valid.length - 1)],
    ['only a map header', bytes(0xa2)],
    ['a reserved additional-info value', bytes(0x1c)],
    ['reserved additional info 31 on an integer', bytes(0x1f)],
    ['a lone break code', bytes(0xff)],
    ['a byte string longer than the body', bytes(0x5a, 0xff, 0xff, 0xff, 0xff, 1, 2)],
    ['a text string longer than the body', bytes(0x7a, 0x00, 0x01, 0x00, 0x00, 0x61)],
    ['an array longer than the body', bytes(0x9a, 0xff, 0xff, 0xff, 0xff, 0)],
    ['a map longer than the body', bytes(0xba, 0x7f, 0xff, 0xff, 0xff, 0, 0)],
    ['a 64-bit array length', bytes(0x9b, 0, 0, 0, 1, 0, 0, 0, 0)],
    ['an indefinite-length byte string', bytes(0x5f, 0x41, 0x00, 0xff)],
    ['an unterminated indefinite-length array', bytes(0x9f, 0x01, 0x02)],
    ['an unterminated indefinite-length map', bytes(0xbf, 0x61, 0x76, 0x01)],
    ['a map with an array as a key', bytes(0xa1, 0x81, 0x00, 0x00)],
    ['a map with a map as a key', bytes(0xa1, 0xa0, 0x00)],
    ['a shared reference to nothing (tag 29)', bytes(0xd8, 29, 0x00)],
    ['an invalid regular expression (tag 27)', cat(bytes(0xd8, 27, 0x82), cbor('RegExp'), cbor('(('))],
    ['a truncated tag', bytes(0xd9, 0x01)],
    ['a truncated float', bytes(0xfb, 0x3f, 0xf0)],
  ];
  for (const [name, body] of cases) {
    test(name, () => {
      assert.throws(() => decodeMessage(body), isProtocolError('bad_cbor', 'undecodable CBOR'));
    });
  }

  test('trailing bytes after a valid message', () => {
    assert.throws(() => decodeMessage(cat(valid, bytes(0x00))), isProtocolError('bad_cbor'));
    assert.throws(() => decodeMessage(cat(valid, valid)), isProtocolError('bad_cbor'));
    assert.throws(() => decodeMessage(cat(valid, bytes(0xff))), isProtocolError('bad_cbor'));
  });

  test('the error keeps the decoder error as its cause', () => {
    try {
      decodeMessage(bytes(0x1c));
      assert.fail('should have thrown');
    } catch (err) {
      assert.ok(err instanceof ProtocolError);
      assert.ok(err.cause instanceof Error);
    }
  });

  test('deeply nested arrays (100k levels) are a ProtocolError, not a crash', () => {
    const depth = 100_000;
    const definite = new Uint8Array(depth + 1).fill(0x81); // [[[...[0]...]]]
    definite[depth] = 0x00;
    assert.throws(() => decodeMessage(definite), isProtocolError('bad_cbor'));

    const indefinite = new Uint8Array(2 * depth).fill(0x9f); // [_ [_ ... ] ]
    indefinite.fill(0xff, depth);
    assert.throws(() => decodeMessage(indefinite), isProtocolError('bad_cbor'));
  });

  test('deeply nested maps (100k levels) inside a valid envelope are a ProtocolError', () => {
    const depth = 100_000;
    const head = cbor({ v: 1, t: T_ANY.type }); // a map of 2 entries: bump it to 3 and add "payload"
    assert.equal(head[0], 0xa2);
    const nested = new Uint8Array(depth * 3 + 1);
    for (let i = 0; i < depth; i++) nested.set([0xa1, 0x61, 0x6b], i * 3); // {"k": ...
    nested[depth * 3] = 0x00;
    const body = cat(bytes(0xa3), head.subarray(1), cbor('payload'), nested);
    assert.throws(() => decodeMessage(body), isProtocolError('bad_cbor'));
  });

  test('the decoder still works after each kind of failure', () => {
    const deep = new Uint8Array(100_001).fill(0x81);
    deep[100_000] = 0;
    for (const bad of [deep, bytes(0x1c), bytes(0x9f, 0x01), cat(valid, valid), bytes(0xd9, 0x01, 0x03, 0x01)]) {
      assert.throws(() => decodeMessage(bad), ProtocolError);
      assert.deepEqual(decodeMessage(valid), { v: 1, t: PING.type });
      // maps must still decode as plain objects (tag 259 switches the decoder to Map mode while it reads)
      assert.ok(isPlainMap(decodeMessage(cbor({ v: 1, t: T_OBJECTS.type, o: { a: 1 } })).o));
    }
  });
});

describe('validation: envelope', () => {
  test('valid CBOR that is not a map is bad_envelope', () => {
    for (const value of [0, 7, -1, 1.5, 'hello', '', true, false, null, undefined, [], [1, 3], bytes(1, 3)]) {
      assert.throws(() => decodeMessage(cbor(value)), isProtocolError('bad_envelope', 'must be a CBOR map'), `value ${String(value)}`);
    }
  });

  test('tagged values that decode to class instances are bad_envelope, not maps', () => {
    const envelope = cbor({ v: 1, t: PING.type });
    const cases: [string, Uint8Array][] = [
      ['a date (tag 1)', cat(bytes(0xc1), cbor(1_700_000_000))],
      ['a date string (tag 0)', cat(bytes(0xc0), cbor('2024-01-01T00:00:00Z'))],
      ['a set (tag 258)', cat(bytes(0xd9, 0x01, 0x02), cbor([1, 2]))],
      ['a Map (tag 259)', cat(bytes(0xd9, 0x01, 0x03), envelope)],
      ['a big integer (tag 2)', cat(bytes(0xc2), cbor(bytes(1, 0, 0, 0, 0, 0, 0, 0, 0)))],
      ['a Float32Array (tag 85)', cat(bytes(0xd8, 85), cbor(new Uint8Array(8)))],
      ['a regular expression (tag 27)', cat(bytes(0xd8, 27, 0x82), cbor('RegExp'), cbor('a+'))],
      ['an Error (tag 27)', cat(bytes(0xd8, 27, 0x82), cbor('Error'), cbor('boom'))],
      ['an unknown tag around a valid envelope', cat(bytes(0xd9, 0x12, 0x34), envelope)],
      ['a Uint8Array tag (64)', cat(bytes(0xd8, 64), cbor(bytes(1, 2)))],
    ];
    for (const [name, body] of cases) {
      assert.throws(() => decodeMessage(body), isProtocolError('bad_envelope'), name);
    }
  });

  test('the self-described CBOR tag (55799) around a map is transparent', () => {
    const body = cat(bytes(0xd9, 0xd9, 0xf7), cbor({ v: 1, t: PING.type }));
    assert.deepEqual(decodeMessage(body), { v: 1, t: PING.type });
  });

  test('a version other than PROTOCOL_VERSION is bad_version', () => {
    assert.equal(PROTOCOL_VERSION, 1);
    rejects({ v: 2, t: PING.type }, 'bad_version', 'protocol version 2 is not supported');
    rejects({ v: 0, t: PING.type }, 'bad_version');
    rejects({ v: -1, t: PING.type }, 'bad_version');
    rejects({ v: 1.5, t: PING.type }, 'bad_version');
    rejects({ v: '1', t: PING.type }, 'bad_version');
    rejects({ v: true, t: PING.type }, 'bad_version');
    rejects({ v: [1], t: PING.type }, 'bad_version');
    rejects({ t: PING.type }, 'bad_version', '(missing)');
    rejects({ v: null, t: PING.type }, 'bad_version');
    rejects({ v: 2n ** 64n - 1n, t: PING.type }, 'bad_version');
    // the version is checked before the type
    rejects({ v: 9, t: 99999 }, 'bad_version');
  });

  test('a version value with toString/valueOf keys is reported, not a TypeError', () => {
    rejects({ v: { toString: 1, valueOf: 2 }, t: PING.type }, 'bad_version');
    rejects({ v: { toString: 'x' }, t: PING.type }, 'bad_version');
  });

  test('a long version string is shortened in the message', () => {
    try {
      decodeValue({ v: 'x'.repeat(10_000), t: 1 });
      assert.fail('should have thrown');
    } catch (err) {
      assert.ok(err instanceof ProtocolError && err.kind === 'bad_version');
      assert.ok(err.message.length < 300, err.message);
    }
  });

  test('a missing or non-integer type is bad_envelope', () => {
    rejects({ v: 1 }, 'bad_envelope', '"t"');
    rejects({ v: 1, t: null }, 'bad_envelope', '"t"');
    rejects({ v: 1, t: '3' }, 'bad_envelope', '"t"');
    rejects({ v: 1, t: 3.5 }, 'bad_envelope', '"t"');
    rejects({ v: 1, t: [3] }, 'bad_envelope', '"t"');
    rejects({ v: 1, t: { x: 3 } }, 'bad_envelope', '"t"');
    rejects({ v: 1, t: true }, 'bad_envelope', '"t"');
    rejects({ v: 1, t: NaN }, 'bad_envelope', '"t"');
    rejects({ v: 1, t: Infinity }, 'bad_envelope', '"t"');
    rejects({ v: 1, t: 2n ** 64n - 1n }, 'bad_envelope', '"t"');
  });

  test('a type number that is not registered is unknown_type', () => {
    for (const t of [0, -1, 6, 9, 100, 248, 256, 1e9, -(2 ** 53)]) {
      rejects({ v: 1, t }, 'unknown_type', `unknown message type ${t}`);
    }
  });

  test('a request id outside 0..MAX_REQUEST_ID or not an integer is bad_envelope', () => {
    for (const id of [-1, MAX_REQUEST_ID + 1, 1.5, '1', null, [1], true]) {
      rejects({ v: 1, t: PING.type, id }, 'bad_envelope', '"id"');
    }
    assert.equal(decodeValue({ v: 1, t: PING.type, id: 0 }).id, 0);
    assert.equal(decodeValue({ v: 1, t: PING.type, id: MAX_REQUEST_ID }).id, MAX_REQUEST_ID);
  });

  test('an integer-valued float is accepted for v, t and id (CBOR may encode them either way)', () => {
    // f64 1.0, 3.0, 7.0 written by hand: {"v": 1.0, "t": 3.0, "id": 7.0}
    const f64 = (x: number) => {
      const b = Buffer.alloc(9);
      b[0] = 0xfb;
      b.writeDoubleBE(x, 1);
      return b;
    };
    const body = cat(bytes(0xa3), cbor('v'), f64(1), cbor('t'), f64(3), cbor('id'), f64(7));
    assert.deepEqual(decodeMessage(body), { v: 1, t: 3, id: 7 });
  });

  test('unknown extra fields are kept and ignored (forward compatibility)', () => {
    const m = decodeValue({ v: 1, t: PING.type, future: { x: [1, 2] }, other: 'y' });
    assert.deepEqual(m.future, { x: [1, 2] });
  });
});

describe('validation: core message fields', () => {
  const hello = () => ({ v: 1, t: HELLO.type, realm: 'default', role: 'node', port: 9443 });

  test('HELLO: wrong field types, lengths and missing fields are invalid_message', () => {
    rejects({ ...hello(), realm: '' }, 'invalid_message', '"realm"');
    rejects({ ...hello(), realm: 'r'.repeat(65) }, 'invalid_message', '"realm"');
    rejects({ ...hello(), realm: 5 }, 'invalid_message', '"realm"');
    rejects({ ...hello(), realm: bytes(0x61) }, 'invalid_message', '"realm"');
    rejects({ ...hello(), role: 'admin' }, 'invalid_message', '"role"');
    rejects({ ...hello(), port: 65536 }, 'invalid_message', '"port"');
    rejects({ ...hello(), port: -1 }, 'invalid_message', '"port"');
    rejects({ ...hello(), port: '9443' }, 'invalid_message', '"port"');
    rejects({ ...hello(), agent: 'a'.repeat(65) }, 'invalid_message', '"agent"');
    rejects({ ...hello(), agent: 1 }, 'invalid_message', '"agent"');
    const { realm: _r, ...noRealm } = hello();
    rejects(noRealm, 'invalid_message', '"realm" is missing');
    rejects({ ...hello(), realm: null }, 'invalid_message', '"realm" is missing');
    assert.equal(decodeValue({ ...hello(), realm: 'r'.repeat(64), agent: '' }).realm, 'r'.repeat(64));
  });

  test('ERROR: code and message bounds', () => {
    const e = { v: 1, t: ERROR.type, id: 1, code: 'X', message: 'm' };
    assert.deepEqual(decodeValue(e), e);
    rejects({ ...e, code: '' }, 'invalid_message', '"code"');
    rejects({ ...e, message: 'm'.repeat(1025) }, 'invalid_message', '"message"');
    rejects({ ...e, message: undefined }, 'invalid_message', '"message" is missing');
    assert.equal(decodeValue({ ...e, message: 'm'.repeat(1024) }).message, 'm'.repeat(1024));
  });
});

describe('validation: every schema kind', () => {
  test('bytes: exact and ranged lengths, wrong types', () => {
    decodeValue(validBytesMsg());
    decodeValue({ ...validBytesMsg(), range: bytes() });
    decodeValue({ ...validBytesMsg(), range: bytes(1, 2, 3, 4) });
    rejects({ ...validBytesMsg(), fixed: new Uint8Array(31) }, 'invalid_message', 'must be 32 bytes, got 31');
    rejects({ ...validBytesMsg(), fixed: new Uint8Array(33) }, 'invalid_message', 'must be 32 bytes, got 33');
    rejects({ ...validBytesMsg(), fixed: new Uint8Array(0) }, 'invalid_message', '"fixed"');
    rejects({ ...validBytesMsg(), range: bytes(1, 2, 3, 4, 5) }, 'invalid_message', 'must be 0..4 bytes, got 5');
    rejects({ ...validBytesMsg(), fixed: 'x'.repeat(32) }, 'invalid_message', 'must be bytes');
    rejects({ ...validBytesMsg(), fixed: Array.from(id32) }, 'invalid_message', 'must be bytes');
    rejects({ ...validBytesMsg(), fixed: 32 }, 'invalid_message', 'must be bytes');
    rejects({ ...validBytesMsg(), fixed: { length: 32 } }, 'invalid_message', 'must be bytes');
  });

  test('bytes: optional field absent, null, valid and invalid', () => {
    assert.equal(decodeValue(validBytesMsg()).maybe, undefined);
    assert.equal(decodeValue({ ...validBytesMsg(), maybe: null }).maybe, null);
    decodeValue({ ...validBytesMsg(), maybe: bytes(1) });
    rejects({ ...validBytesMsg(), maybe: bytes() }, 'invalid_message', '"maybe"');
    rejects({ ...validBytesMsg(), maybe: 'x' }, 'invalid_message', '"maybe"');
  });

  test('uint and int: bounds, non-integers and other types', () => {
    decodeValue(validNumbersMsg());
    decodeValue({ ...validNumbersMsg(), u: 0, i: -10 });
    decodeValue({ ...validNumbersMsg(), u: 1000, i: 10, big: Number.MAX_SAFE_INTEGER });
    rejects({ ...validNumbersMsg(), u: 1001 }, 'invalid_message', '"u" must be an integer in 0..1000');
    rejects({ ...validNumbersMsg(), u: -1 }, 'invalid_message', '"u"');
    rejects({ ...validNumbersMsg(), u: 1.5 }, 'invalid_message', '"u"');
    rejects({ ...validNumbersMsg(), u: NaN }, 'invalid_message', '"u"');
    rejects({ ...validNumbersMsg(), u: '5' }, 'invalid_message', '"u"');
    rejects({ ...validNumbersMsg(), u: true }, 'invalid_message', '"u"');
    rejects({ ...validNumbersMsg(), big: 2 ** 64 }, 'invalid_message', '"big"');
    rejects({ ...validNumbersMsg(), big: 2n ** 64n - 1n }, 'invalid_message', '"big"');
    rejects({ ...validNumbersMsg(), big: Infinity }, 'invalid_message', '"big"');
    rejects({ ...validNumbersMsg(), i: -11 }, 'invalid_message', '"i" must be an integer in -10..10');
    rejects({ ...validNumbersMsg(), i: 11 }, 'invalid_message', '"i"');
    rejects({ ...validNumbersMsg(), i: 0.5 }, 'invalid_message', '"i"');
    rejects({ ...validNumbersMsg(), i: [1] }, 'invalid_message', '"i"');
    const { u: _u, ...noU } = validNumbersMsg();
    rejects(noU, 'invalid_message', '"u" is missing');
  });

  test('str, enum and bool', () => {
    decodeValue(validScalarsMsg());
    decodeValue({ ...validScalarsMsg(), s: '12345678', e: 3, flag: true, note: '' });
    rejects({ ...validScalarsMsg(), s: '' }, 'invalid_message', '"s" must be 1..8 characters long');
    rejects({ ...validScalarsMsg(), s: '123456789' }, 'invalid_message', '"s"');
    rejects({ ...validScalarsMsg(), s: 'x'.repeat(100_000) }, 'invalid_message', '"s"');
    rejects({ ...validScalarsMsg(), s: bytes(0x61) }, 'invalid_message', '"s" must be a string');
    rejects({ ...validScalarsMsg(), s: ['a'] }, 'invalid_message', '"s" must be a string');
    rejects({ ...validScalarsMsg(), e: 'c' }, 'invalid_message', '"e" must be one of a, b, 3');
    rejects({ ...validScalarsMsg(), e: '3' }, 'invalid_message', '"e"');
    rejects({ ...validScalarsMsg(), e: 'A' }, 'invalid_message', '"e"');
    rejects({ ...validScalarsMsg(), e: ['a'] }, 'invalid_message', '"e"');
    rejects({ ...validScalarsMsg(), flag: 0 }, 'invalid_message', '"flag" must be a boolean');
    rejects({ ...validScalarsMsg(), flag: 'true' }, 'invalid_message', '"flag"');
    rejects({ ...validScalarsMsg(), flag: undefined }, 'invalid_message', '"flag" is missing');
    rejects({ ...validScalarsMsg(), note: 'abcde' }, 'invalid_message', '"note"');
  });

  test('arr: length limit, element types (with index in the path), nested arrays', () => {
    decodeValue(validArraysMsg());
    decodeValue({ ...validArraysMsg(), list: [], grid: [] });
    decodeValue({ ...validArraysMsg(), list: [0, 1, 2, 255], ids: [bytes(1, 2), bytes(3, 4), bytes(5, 6)] });
    rejects({ ...validArraysMsg(), list: [1, 2, 3, 4, 5] }, 'invalid_message', '"list" has 5 items, at most 4 allowed');
    rejects({ ...validArraysMsg(), list: new Array(100_000).fill(0) }, 'invalid_message', '"list" has 100000 items');
    rejects({ ...validArraysMsg(), list: [1, 2, 256] }, 'invalid_message', '"list[2]"');
    rejects({ ...validArraysMsg(), list: [1, null] }, 'invalid_message', '"list[1]" is missing');
    rejects({ ...validArraysMsg(), list: { 0: 1 } }, 'invalid_message', '"list" must be an array');
    rejects({ ...validArraysMsg(), list: bytes(1, 2) }, 'invalid_message', '"list" must be an array');
    rejects({ ...validArraysMsg(), list: 'abc' }, 'invalid_message', '"list" must be an array');
    rejects({ ...validArraysMsg(), ids: [bytes(1, 2), bytes(1)] }, 'invalid_message', '"ids[1]" must be 2 bytes, got 1');
    rejects({ ...validArraysMsg(), ids: [bytes(1, 2), bytes(1, 2), bytes(1, 2), bytes(1, 2)] }, 'invalid_message', '"ids"');
    rejects({ ...validArraysMsg(), grid: [['a'], ['b', 'ccc']] }, 'invalid_message', '"grid[1][1]"');
    rejects({ ...validArraysMsg(), grid: [['a', 'b', 'c']] }, 'invalid_message', '"grid[0]" has 3 items');
    rejects({ ...validArraysMsg(), grid: [[], [], []] }, 'invalid_message', '"grid" has 3 items');
    rejects({ ...validArraysMsg(), grid: ['a'] }, 'invalid_message', '"grid[0]" must be an array');
  });

  test('obj: nested fields with dotted paths, non-map values', () => {
    decodeValue(validObjectsMsg());
    decodeValue({ ...validObjectsMsg(), o: { a: 10, b: 'xy', inner: { x: true }, unknown: 1 }, items: [{ k: 'a' }, { k: 'abc' }] });
    rejects({ ...validObjectsMsg(), o: { a: 11 } }, 'invalid_message', '"o.a"');
    rejects({ ...validObjectsMsg(), o: {} }, 'invalid_message', '"o.a" is missing');
    rejects({ ...validObjectsMsg(), o: { a: 1, b: 'abcde' } }, 'invalid_message', '"o.b"');
    rejects({ ...validObjectsMsg(), o: { a: 1, inner: { x: 1 } } }, 'invalid_message', '"o.inner.x" must be a boolean');
    rejects({ ...validObjectsMsg(), o: { a: 1, inner: {} } }, 'invalid_message', '"o.inner.x" is missing');
    rejects({ ...validObjectsMsg(), o: { a: 1, inner: [true] } }, 'invalid_message', '"o.inner" must be a map');
    rejects({ ...validObjectsMsg(), items: [{ k: 'a' }, { k: '' }] }, 'invalid_message', '"items[1].k"');
    rejects({ ...validObjectsMsg(), items: [{ k: 'a' }, 'k'] }, 'invalid_message', '"items[1]" must be a map');
    for (const o of [[{ a: 1 }], bytes(1), 'map', 1, true]) {
      rejects({ ...validObjectsMsg(), o }, 'invalid_message', '"o" must be a map');
    }
    const { o: _o, ...noO } = validObjectsMsg();
    rejects(noO, 'invalid_message', '"o" is missing');
  });

  test('obj: tagged values that decode to class instances are not maps', () => {
    // {"v":1,"t":254,"o": <tagged>} with the tagged value written by hand
    const prefix = cat(bytes(0xa3), cbor('v'), cbor(1), cbor('t'), cbor(T_OBJECTS.type), cbor('o'));
    const tagged: [string, Uint8Array][] = [
      ['date', cat(bytes(0xc1), cbor(0))],
      ['set', cat(bytes(0xd9, 0x01, 0x02), cbor([]))],
      ['Map', cat(bytes(0xd9, 0x01, 0x03), cbor({ a: 1 }))],
      ['unknown tag', cat(bytes(0xd9, 0x12, 0x34), cbor({ a: 1 }))],
      ['regexp', cat(bytes(0xd8, 27, 0x82), cbor('RegExp'), cbor('a'))],
    ];
    for (const [name, value] of tagged) {
      assert.throws(() => decodeMessage(cat(prefix, value)), isProtocolError('invalid_message', '"o" must be a map'), name);
    }
  });

  test('any: accepts every value except a missing one (null is a value)', () => {
    for (const payload of [null, 0, 'x', [1, [2]], { deep: { er: [null, true] } }, false, 1.25, -7]) {
      assert.deepEqual(decodeValue({ v: 1, t: T_ANY.type, payload }).payload, payload);
    }
    const b = decodeValue({ v: 1, t: T_ANY.type, payload: bytes(1, 2) }).payload;
    assert.ok(b instanceof Uint8Array);
    assert.deepEqual([...b], [1, 2]);
    rejects({ v: 1, t: T_ANY.type }, 'invalid_message', '"payload" is missing');
    assert.equal(decodeValue({ v: 1, t: T_ANY.type, payload: 1, extra: null }).extra, null);
  });

  test('checkFields can be used on its own and reports the prefix', () => {
    checkFields({ a: 1 }, { a: f.uint(1) });
    assert.throws(() => checkFields({ a: 2 }, { a: f.uint(1) }, 'x.'), isProtocolError('invalid_message', '"x.a"'));
  });

  test('a failure deep in arrays, maps and string maps names its whole path', () => {
    const fields = { a: f.arr(f.obj({ b: f.str(0, 4), c: f.opt(f.arr(f.uint(9), 3)), h: f.opt(f.strmap(4, 8, 2, 64)) }), 4) };
    const fails = (value: unknown, message: string) =>
      assert.throws(
        () => checkFields({ a: value }, fields, 'p.'),
        (err: unknown) => err instanceof ProtocolError && err.kind === 'invalid_message' && err.message === message,
      );
    checkFields({ a: [{ b: 'x', c: [1, 2], h: { k: 'v' } }] }, fields);
    fails([{ b: 'x' }, { b: 5 }], 'field "p.a[1].b" must be a string');
    fails([{ b: 'x', c: [1, 10] }], 'field "p.a[0].c[1]" must be an integer in 0..9');
    fails([{ b: 'x', h: { k: 'long' } }], 'field "p.a[0].h.k" must be a string of at most 2 characters');
    fails([{}], 'field "p.a[0].b" is missing');
    fails([1], 'field "p.a[0]" must be a map');
    fails({}, 'field "p.a" must be an array');
  });
});

describe('validation: __proto__ and friends', () => {
  test('a __proto__ key does not pollute Object.prototype nor change the message prototype', () => {
    const evil = JSON.parse('{"v":1,"t":3,"__proto__":{"polluted":"yes","v":1,"t":3}}') as Record<string, unknown>;
    assert.ok(Object.hasOwn(evil, '__proto__'));
    const body = cbor(evil);
    assert.ok(Buffer.from(body).includes(Buffer.from('__proto__')), 'the key is on the wire');
    const msg = decodeMessage(body) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(msg), Object.prototype);
    assert.equal(msg.polluted, undefined);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal((Object.prototype as Record<string, unknown>).polluted, undefined);
  });

  test('envelope fields hidden in a __proto__ map do not count', () => {
    const evil = JSON.parse('{"__proto__":{"v":1,"t":3}}') as unknown;
    assert.throws(() => decodeMessage(cbor(evil)), isProtocolError('bad_version'));
  });

  test('a __proto__ key nested in obj, arr and any values pollutes nothing', () => {
    const evil = JSON.parse(
      '{"v":1,"t":254,"o":{"a":1,"__proto__":{"polluted":1,"b":"zz"}},"items":[{"k":"a","__proto__":{"polluted":2}}]}',
    ) as unknown;
    const msg = decodeMessage(cbor(evil)) as unknown as { o: Record<string, unknown>; items: Record<string, unknown>[] };
    assert.equal(Object.getPrototypeOf(msg.o), Object.prototype);
    assert.equal(msg.o.polluted, undefined);
    assert.equal(msg.items[0]!.polluted, undefined);
    const anyEvil = JSON.parse('{"v":1,"t":255,"payload":{"x":[{"__proto__":{"polluted":3}}]}}') as unknown;
    decodeMessage(cbor(anyEvil));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('constructor/prototype keys are plain data', () => {
    const evil = JSON.parse('{"v":1,"t":255,"payload":{"constructor":{"prototype":{"polluted":4}}},"constructor":1}') as unknown;
    const msg = decodeMessage(cbor(evil));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.deepEqual(msg.payload, { constructor: { prototype: { polluted: 4 } } });
  });

  test('a field missing from the message is not looked up as an inherited property', () => {
    // "toString" exists on Object.prototype; a required field of that name must still count as missing
    const T = T_INHERITED;
    assert.throws(() => decodeValue({ v: 1, t: T.type }), isProtocolError('invalid_message', '"toString" is missing'));
    assert.equal(decodeValue({ v: 1, t: T.type, toString: 'ok' }).toString, 'ok');
  });
});

describe('message registry', () => {
  test('defineMessage returns the existing definition for the same name', () => {
    assert.equal(defineMessage(250, 'TEST_BYTES', {}), T_BYTES);
    assert.equal(messageDef(250), T_BYTES);
    assert.equal(messageName(250), 'TEST_BYTES');
    assert.equal(messageName(HELLO.type), 'HELLO');
    assert.equal(messageName(200), 'UNKNOWN(200)');
    assert.equal(messageDef(200), undefined);
  });

  test('defineMessage refuses a taken number and numbers outside 1..255', () => {
    assert.throws(() => defineMessage(250, 'OTHER', {}), /already defined as TEST_BYTES/);
    for (const bad of [0, 256, -1, 1.5, NaN]) assert.throws(() => defineMessage(bad, 'BAD', {}), RangeError);
  });

  test('response flags of the core messages', () => {
    assert.equal(HELLO.response, false);
    assert.equal(HELLO_ACK.response, true);
    assert.equal(PING.response, false);
    assert.equal(PONG.response, true);
    assert.equal(ERROR.response, true);
  });
});
