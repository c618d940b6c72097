import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Encoder } from 'cbor-x/encode';
import { createFakeStream, createStreamPair, type FakeStream } from '../helpers/fake-stream.js';
import { ConnectionClosedError, FrameTooLargeError, ProtocolError, QueueFullError, type ProtocolErrorKind } from '../../src/util/errors.js';
import { decodeMessage, encodeBody, encodeMessage, frameBody } from '../../src/wire/codec.js';
import { encodeFrame, FrameDecoder, writeFrameHeader } from '../../src/wire/frame.js';
import { DEFAULT_HIGH_WATER_BYTES, DEFAULT_MAX_QUEUED_BYTES, FramedStream } from '../../src/wire/framed-stream.js';
import type { MessageFields as OutboundMessage } from '../../src/wire/codec.js';
import { defineMessage, ERROR, HELLO, PING, PONG, type Message } from '../../src/wire/messages.js';
import { f } from '../../src/wire/schema.js';

const BLOB = defineMessage(247, 'TEST_STREAM_BLOB', { payload: f.any(), seq: f.opt(f.uint()) });

const raw = new Encoder({ useRecords: false, mapsAsObjects: true, variableMapSize: true, tagUint8Array: false });
const frameOf = (value: unknown): Uint8Array => encodeFrame(raw.encode(value), Infinity);
const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
/** Lets queued microtasks and I/O callbacks run. */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const ping = (id: number): OutboundMessage => ({ t: PING.type, id });
const blob = (size: number, seq?: number): OutboundMessage => {
  const payload = new Uint8Array(size);
  for (let i = 0; i < size; i++) payload[i] = (i * 7 + (seq ?? 0)) & 0xff;
  return seq === undefined ? { t: BLOB.type, payload } : { t: BLOB.type, payload, seq };
};

/** The messages carried by one write, decoded. */
function messagesIn(write: Uint8Array): Message[] {
  const d = new FrameDecoder(Infinity);
  const frames = d.push(write);
  d.end();
  return frames.map((body) => decodeMessage(body));
}

/** Plain values for deepEqual (Buffer vs Uint8Array does not matter here). */
function plain(msg: unknown): unknown {
  if (msg instanceof Uint8Array) return { bytes: Buffer.from(msg).toString('hex') };
  if (Array.isArray(msg)) return msg.map(plain);
  if (msg !== null && typeof msg === 'object') return Object.fromEntries(Object.entries(msg).map(([k, v]) => [k, plain(v)]));
  return msg;
}

async function readAll(framed: FramedStream): Promise<Message[]> {
  const out: Message[] = [];
  for await (const msg of framed) out.push(msg);
  return out;
}

function pair(options: ConstructorParameters<typeof FramedStream>[1] = {}): { a: FakeStream; b: FakeStream; fa: FramedStream; fb: FramedStream } {
  const [a, b] = createStreamPair();
  return { a, b, fa: new FramedStream(a, options), fb: new FramedStream(b, options) };
}

describe('FramedStream: round trip', () => {
  test('messages arrive in order, validated, with the version filled in; the sent objects are not modified', async () => {
    const { fa, fb } = pair();
    const sent: OutboundMessage[] = [
      { t: HELLO.type, id: 1, realm: 'default', role: 'node', port: 9443, agent: 'test' },
      ping(2),
      { t: ERROR.type, id: 3, code: 'MACULA_ERR_X', message: 'nope' },
      blob(100, 4),
    ];
    const before = structuredClone(sent);
    await Promise.all(sent.map((m) => fa.send(m)));
    assert.deepEqual(sent, before, 'send() adds the envelope to the frame, not to the caller\'s object');
    for (const m of sent) assert.deepEqual(plain(await fb.read()), plain({ ...m, v: 1 }));
    // and the other way
    await fb.send({ t: PONG.type, id: 2 });
    assert.deepEqual(await fa.read(), { v: 1, t: PONG.type, id: 2 });
  });

  test('1000 messages with the bytes delivered in odd 7-byte chunks', async () => {
    const { a, fa, fb } = pair();
    a.deliverChunkSize = 7;
    const sends = [];
    for (let i = 0; i < 1000; i++) sends.push(fa.send(i % 10 === 0 ? blob(i, i) : ping(i)));
    await Promise.all(sends);
    await fa.end();
    const got = await readAll(fb);
    assert.equal(got.length, 1000);
    for (let i = 0; i < 1000; i++) {
      if (i % 10 === 0) assert.deepEqual(plain(got[i]), plain({ ...blob(i, i), v: 1 }));
      else assert.deepEqual(got[i], { v: 1, t: PING.type, id: i });
    }
  });

  test('a message close to the 1 MiB default limit, delivered in 64 KiB chunks', async () => {
    const { a, fa, fb } = pair();
    a.deliverChunkSize = 64 * 1024;
    const big = blob(1024 * 1024 - 64, 1);
    const sent = fa.send(big);
    const got = await fb.read();
    await sent;
    assert.ok(got !== null);
    assert.ok(Buffer.from(got.payload as Uint8Array).equals(Buffer.from(big.payload as Uint8Array)));
  });

  test('the async iterator ends when the peer ends', async () => {
    const { fa, fb } = pair();
    void fa.send(ping(1));
    void fa.send(ping(2));
    void fa.end();
    assert.deepEqual(await readAll(fb), [
      { v: 1, t: PING.type, id: 1 },
      { v: 1, t: PING.type, id: 2 },
    ]);
    assert.equal(await fb.read(), null, 'read() keeps returning null');
  });
});

describe('FramedStream: write coalescing', () => {
  test('N sends in one tick produce exactly one write, carrying all N frames in order', async () => {
    const { a, fa } = pair();
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 100; i++) sends.push(fa.send(ping(i)));
    assert.equal(a.writeCount, 0, 'nothing is written synchronously');
    assert.ok(fa.queuedBytes > 0);
    await Promise.all(sends);
    assert.equal(a.writeCount, 1);
    assert.equal(fa.queuedBytes, 0);
    const msgs = messagesIn(a.writes[0]!);
    assert.deepEqual(msgs.map((m) => m.id), Array.from({ length: 100 }, (_, i) => i));
    // the write is exactly the frames of the encoded bodies, back to back (fields first, then the envelope)
    const expected = cat(...Array.from({ length: 100 }, (_, i) => encodeFrame(encodeBody({ t: PING.type, v: 1, id: i }))));
    assert.deepEqual(a.writes[0], expected);
  });

  test('sends in separate ticks with the stream idle produce separate writes', async () => {
    const { a, fa } = pair();
    await fa.send(ping(1));
    await tick();
    await fa.send(ping(2));
    assert.equal(a.writeCount, 2);
  });

  test('sends made while a write is in flight are batched into the next single write', async () => {
    const { a, fa } = pair();
    a.holdWrites = true;
    let firstDone = false;
    const first = fa.send(ping(0)).then(() => (firstDone = true));
    await tick();
    assert.equal(a.writeCount, 1);
    assert.equal(a.heldWrites, 1);

    // five more, spread over several ticks, while the first write is still in flight
    const later: Promise<void>[] = [];
    let laterDone = 0;
    for (let i = 1; i <= 5; i++) {
      later.push(fa.send(ping(i)).then(() => void laterDone++));
      if (i % 2 === 0) await tick();
    }
    await tick();
    assert.equal(a.writeCount, 1, 'no second write while the first is in flight');
    assert.equal(firstDone, false);
    assert.ok(fa.queuedBytes > 0);

    a.releaseWrites();
    await first;
    await tick();
    assert.equal(a.writeCount, 2, 'exactly one more write');
    assert.equal(laterDone, 0, 'the batched sends wait for their own write');
    assert.equal(fa.queuedBytes, 0, 'bytes handed to the transport are no longer queued');
    assert.deepEqual(messagesIn(a.writes[1]!).map((m) => m.id), [1, 2, 3, 4, 5]);

    a.releaseWrites();
    await Promise.all(later);
    assert.equal(laterDone, 5);
    assert.equal(a.writeCount, 2);
  });
});

describe('FramedStream: send limits', () => {
  test('an over-limit message rejects with FrameTooLargeError, writes nothing, and the stream stays usable', async () => {
    const limit = 1000;
    const { a, fa, fb } = pair({ maxFrameSize: limit });
    // size the payload so that the body is exactly the limit
    const overhead = encodeBody({ ...blob(300), v: 1 }).length - 300;
    const exact = blob(limit - overhead);
    assert.equal(encodeBody({ ...exact, v: 1 }).length, limit);

    await assert.rejects(fa.send(blob(limit - overhead + 1)), (err) => {
      assert.ok(err instanceof FrameTooLargeError);
      assert.equal(err.kind, 'frame_too_large');
      assert.equal(err.size, limit + 1);
      assert.equal(err.limit, limit);
      return true;
    });
    await assert.rejects(fa.send(blob(10_000)), FrameTooLargeError);
    assert.equal(fa.queuedBytes, 0);
    await tick();
    assert.equal(a.writeCount, 0);

    await fa.send(exact);
    await fa.send(ping(7));
    assert.equal((await fb.read())?.t, BLOB.type);
    assert.deepEqual(await fb.read(), { v: 1, t: PING.type, id: 7 });
  });

  test('an over-limit message in the middle of a batch does not disturb the others', async () => {
    const { a, fa } = pair({ maxFrameSize: 200 });
    const ok1 = fa.send(ping(1));
    const bad = fa.send(blob(500));
    const ok2 = fa.send(ping(2));
    await assert.rejects(bad, FrameTooLargeError);
    await Promise.all([ok1, ok2]);
    assert.equal(a.writeCount, 1);
    assert.deepEqual(messagesIn(a.writes[0]!).map((m) => m.id), [1, 2]);
  });

  test('maxQueuedBytes: a send that would exceed it rejects with QueueFullError; later sends work again', async () => {
    const { a, fa } = pair({ maxQueuedBytes: 1000 });
    assert.equal(new FramedStream(createFakeStream()).maxQueuedBytes, DEFAULT_MAX_QUEUED_BYTES);
    const s1 = fa.send(blob(400, 1));
    const s2 = fa.send(blob(400, 2));
    const queued = fa.queuedBytes;
    assert.ok(queued > 800 && queued <= 1000, `queued ${queued}`);
    const refused = fa.send(blob(400, 3));
    assert.equal(fa.queuedBytes, queued, 'a refused message is not counted');
    const small = fa.send(ping(9)); // still fits
    await assert.rejects(refused, (err) => err instanceof QueueFullError && err.limit === 1000 && err.code === 'MACULA_ERR_QUEUE_FULL');
    await Promise.all([s1, s2, small]);
    assert.equal(a.writeCount, 1);
    assert.deepEqual(messagesIn(a.writes[0]!).map((m) => (m.t === PING.type ? 'ping' : m.seq)), [1, 2, 'ping']);
    assert.equal(fa.queuedBytes, 0);
    await fa.send(blob(400, 4));
  });

  test('maxQueuedBytes counts what waits behind an in-flight write', async () => {
    const { a, fa } = pair({ maxQueuedBytes: 1000 });
    a.holdWrites = true;
    const inFlight = fa.send(blob(900, 1));
    await tick();
    assert.equal(a.heldWrites, 1);
    assert.equal(fa.queuedBytes, 0, 'the in-flight write is the transport\'s now');
    const s2 = fa.send(blob(900, 2));
    await assert.rejects(fa.send(blob(200, 3)), QueueFullError);
    a.releaseWrites();
    await inFlight;
    await tick();
    a.releaseWrites();
    await s2;
    assert.equal(a.writeCount, 2);
  });

  test('congested: true once what waits behind an in-flight write reaches highWaterBytes, false when it is written', async () => {
    const { a, fa } = pair({ highWaterBytes: 1000 });
    assert.equal(new FramedStream(createFakeStream()).highWaterBytes, DEFAULT_HIGH_WATER_BYTES);
    assert.equal(new FramedStream(createFakeStream(), { maxQueuedBytes: 500 }).highWaterBytes, 500, 'never above maxQueuedBytes');
    a.holdWrites = true;
    const first = fa.send(blob(900, 1));
    await tick();
    assert.equal(fa.congested, false, 'the in-flight write is the transport\'s');
    const behind = [fa.send(blob(400, 2)), fa.send(blob(400, 3))];
    assert.equal(fa.congested, false);
    behind.push(fa.send(blob(400, 4)));
    assert.equal(fa.congested, true);
    a.releaseWrites();
    await first;
    await tick();
    assert.equal(fa.congested, false, 'the queued messages went into the next write');
    a.releaseWrites();
    await Promise.all(behind);
  });

  test('a message that cannot be encoded rejects (no synchronous throw) and the stream stays usable', async () => {
    const { a, fa } = pair();
    const cyclic: Record<string, unknown> = { t: BLOB.type };
    cyclic.payload = cyclic;
    let promise: Promise<void> | undefined;
    assert.doesNotThrow(() => {
      promise = fa.send(cyclic as OutboundMessage);
    });
    await assert.rejects(promise!);
    await fa.send(ping(1));
    assert.equal(a.writeCount, 1);
    assert.deepEqual(messagesIn(a.writes[0]!), [{ v: 1, t: PING.type, id: 1 }]);
  });
});

describe('FramedStream: protocol violations on read', () => {
  const limit = 1024;
  const cases: [ProtocolErrorKind, Uint8Array, boolean][] = [
    ['frame_too_large', (() => {
      const h = new Uint8Array(4);
      writeFrameHeader(h, 0, limit + 1);
      return h;
    })(), false],
    ['truncated_frame', frameOf({ v: 1, t: PING.type, id: 5 }).subarray(0, 6), true],
    ['bad_cbor', encodeFrame(new Uint8Array([0x1c])), false],
    ['bad_cbor', encodeFrame(cat(raw.encode({ v: 1, t: PING.type }), new Uint8Array([0]))), false],
    ['bad_envelope', frameOf([1, 3]), false],
    ['bad_envelope', frameOf({ v: 1, t: 'PING' }), false],
    ['bad_version', frameOf({ v: 2, t: PING.type }), false],
    ['unknown_type', frameOf({ v: 1, t: 200 }), false],
    ['invalid_message', frameOf({ v: 1, t: HELLO.type, realm: 'r', role: 'node', port: 70000 }), false],
  ];

  for (const [kind, bad, needsEnd] of cases) {
    test(`${kind}: earlier messages are delivered, then onProtocolError once, reset, and a ProtocolError`, async () => {
      const stream = createFakeStream();
      const seen: ProtocolError[] = [];
      const framed = new FramedStream(stream, { maxFrameSize: limit, onProtocolError: (err) => seen.push(err) });
      // a valid message, then the bad bytes and (unless they end the stream) a valid message that must not be delivered
      stream.inject(frameOf({ v: 1, t: PING.type, id: 1 }));
      stream.inject(cat(bad, needsEnd ? new Uint8Array(0) : frameOf({ v: 1, t: PING.type, id: 2 })));
      if (needsEnd) stream.injectEnd();

      assert.deepEqual(await framed.read(), { v: 1, t: PING.type, id: 1 });
      assert.equal(seen.length, 0);
      let thrown: unknown;
      await assert.rejects(framed.read(), (err) => {
        thrown = err;
        return err instanceof ProtocolError && err.kind === kind;
      });
      assert.equal(seen.length, 1);
      assert.equal(seen[0], thrown);
      assert.equal(stream.resetCalls, 1);
      assert.equal(stream.isReset, true);

      // later reads throw the same error without counting it again; nothing after the bad frame is delivered
      await assert.rejects(framed.read(), (err) => err === thrown);
      await assert.rejects(framed.read(), (err) => err === thrown);
      assert.equal(seen.length, 1);
      assert.equal(stream.resetCalls, 1);

      // the sending side is closed too
      await assert.rejects(framed.send(ping(3)), ConnectionClosedError);
    });
  }

  test('messages before a bad frame in the same chunk are delivered first', async () => {
    const stream = createFakeStream();
    const seen: ProtocolError[] = [];
    const framed = new FramedStream(stream, { onProtocolError: (err) => seen.push(err) });
    stream.inject(cat(frameOf({ v: 1, t: PING.type, id: 1 }), frameOf({ v: 1, t: PING.type, id: 2 }), frameOf({ v: 2, t: PING.type }), frameOf({ v: 1, t: PING.type, id: 3 })));
    assert.equal((await framed.read())?.id, 1);
    assert.equal((await framed.read())?.id, 2);
    await assert.rejects(framed.read(), (err) => err instanceof ProtocolError && err.kind === 'bad_version');
    assert.equal(seen.length, 1);
  });

  test('frame_too_large is reported as soon as the header arrives, before any body byte', async () => {
    const stream = createFakeStream();
    const seen: ProtocolError[] = [];
    const framed = new FramedStream(stream, { maxFrameSize: 100, onProtocolError: (err) => seen.push(err) });
    const reading = framed.read();
    const h = new Uint8Array(4);
    writeFrameHeader(h, 0, 0xffffffff);
    stream.inject(h.subarray(0, 2));
    await tick();
    assert.equal(seen.length, 0);
    stream.inject(h.subarray(2));
    await assert.rejects(reading, (err) => err instanceof FrameTooLargeError && err.size === 0xffffffff && err.limit === 100);
    assert.equal(seen.length, 1);
    assert.equal(stream.resetCalls, 1);
  });

  test('the peer finishing mid-frame is truncated_frame; finishing between frames is a clean end', async () => {
    const [a, b] = createStreamPair();
    const fa = new FramedStream(a);
    await fa.send(ping(1));
    // half of a second frame written raw, then the peer finishes
    await a.write(frameOf({ v: 1, t: PING.type, id: 2 }).subarray(0, 5));
    await a.finishWrite();
    const seen: ProtocolError[] = [];
    const reader = new FramedStream(b, { onProtocolError: (e) => seen.push(e) });
    assert.deepEqual(await reader.read(), { v: 1, t: PING.type, id: 1 });
    await assert.rejects(reader.read(), (err) => err instanceof ProtocolError && err.kind === 'truncated_frame');
    assert.equal(seen.length, 1);

    const clean = pair();
    await clean.fa.send(ping(1));
    await clean.fa.end();
    assert.deepEqual(await clean.fb.read(), { v: 1, t: PING.type, id: 1 });
    assert.equal(await clean.fb.read(), null);
    assert.equal(clean.b.resetCalls, 0);
  });

  test('a frame larger than the receiver\'s limit but within the sender\'s is frame_too_large at the receiver', async () => {
    const [a, b] = createStreamPair();
    const sender = new FramedStream(a, { maxFrameSize: 10_000 });
    const seen: ProtocolError[] = [];
    const receiver = new FramedStream(b, { maxFrameSize: 1000, onProtocolError: (e) => seen.push(e) });
    await sender.send(blob(5000));
    await assert.rejects(receiver.read(), FrameTooLargeError);
    assert.equal(seen.length, 1);
  });

  test('a local reset() is not a protocol error: a pending read returns null', async () => {
    const stream = createFakeStream();
    const seen: ProtocolError[] = [];
    const framed = new FramedStream(stream, { onProtocolError: (e) => seen.push(e) });
    stream.inject(frameOf({ v: 1, t: PING.type, id: 1 }).subarray(0, 6)); // a partial frame is buffered
    const reading = framed.read();
    await tick();
    framed.reset();
    assert.equal(await reading, null);
    assert.equal(await framed.read(), null);
    assert.equal(seen.length, 0);
  });

  test('after a local reset(), already received frames are not delivered', async () => {
    const stream = createFakeStream();
    const framed = new FramedStream(stream);
    stream.inject(cat(frameOf({ v: 1, t: PING.type, id: 1 }), frameOf({ v: 1, t: PING.type, id: 2 })));
    assert.equal((await framed.read())?.id, 1);
    framed.reset();
    assert.equal(await framed.read(), null);
  });
});

describe('FramedStream: end()', () => {
  test('flushes the queued messages in one write, then finishes the write side; the peer reads them, then null', async () => {
    const { a, fa, fb } = pair();
    const sends = [fa.send(ping(1)), fa.send(ping(2)), fa.send(ping(3))];
    const ended = fa.end();
    await assert.rejects(fa.send(ping(4)), ConnectionClosedError, 'no sends after end()');
    await ended;
    await Promise.all(sends);
    assert.equal(a.writeCount, 1);
    assert.equal(a.finishWriteCalls, 1);
    assert.equal(a.writeFinished, true);
    assert.deepEqual((await readAll(fb)).map((m) => m.id), [1, 2, 3]);
    assert.equal(await fb.read(), null);
  });

  test('waits for an in-flight write and the batch behind it before finishing', async () => {
    const { a, fa, fb } = pair();
    a.holdWrites = true;
    const s1 = fa.send(ping(1));
    await tick();
    const s2 = fa.send(ping(2));
    let ended = false;
    const ending = fa.end().then(() => (ended = true));
    await tick();
    assert.equal(a.finishWriteCalls, 0, 'not finished while a write is in flight');
    a.releaseWrites();
    await s1;
    await tick();
    assert.equal(a.finishWriteCalls, 0, 'not finished while the second batch is in flight');
    assert.equal(ended, false);
    a.releaseWrites();
    await Promise.all([s2, ending]);
    assert.equal(a.finishWriteCalls, 1);
    assert.equal(a.writeCount, 2);
    assert.deepEqual((await readAll(fb)).map((m) => m.id), [1, 2]);
  });

  test('with nothing queued it finishes at once; repeated calls share one finish', async () => {
    const { a, fa, fb } = pair();
    const e1 = fa.end();
    const e2 = fa.end();
    assert.equal(e1, e2);
    await e1;
    await fa.end();
    assert.equal(a.finishWriteCalls, 1);
    assert.equal(a.writeCount, 0);
    assert.equal(await fb.read(), null);
  });

  test('a second end() during the flush does not resolve before the first', async () => {
    const { a, fa } = pair();
    a.holdWrites = true;
    void fa.send(ping(1));
    const order: string[] = [];
    void fa.end().then(() => order.push('first'));
    void fa.end().then(() => order.push('second'));
    await tick();
    assert.deepEqual(order, []);
    a.releaseWrites();
    await fa.end();
    await tick();
    assert.deepEqual(order, ['first', 'second']);
    assert.equal(a.finishWriteCalls, 1);
  });

  test('end() after a write failure resolves without finishing the stream', async () => {
    const { a, fa } = pair();
    a.failWrites = new Error('boom');
    await assert.rejects(fa.send(ping(1)), ConnectionClosedError);
    await fa.end();
    assert.equal(a.finishWriteCalls, 0);
  });
});

describe('FramedStream: write failures and reset', () => {
  test('a failing write rejects every pending send with ConnectionClosedError; later sends reject too', async () => {
    const { a, fa } = pair();
    const boom = new Error('boom');
    a.failWrites = boom;
    const sends = [fa.send(ping(1)), fa.send(ping(2)), fa.send(ping(3))];
    for (const s of sends) {
      await assert.rejects(s, (err) => err instanceof ConnectionClosedError && err.cause === boom && err.code === 'MACULA_ERR_CONNECTION_CLOSED');
    }
    assert.equal(a.writeCount, 1);
    a.failWrites = undefined; // even if the transport recovered, the framed stream stays failed
    await assert.rejects(fa.send(ping(4)), ConnectionClosedError);
    await tick();
    assert.equal(a.writeCount, 1);
    assert.equal(fa.queuedBytes, 0);
  });

  test('an in-flight write failing also rejects the batch queued behind it', async () => {
    const { a, fa } = pair();
    a.holdWrites = true;
    const s1 = fa.send(ping(1));
    await tick();
    const s2 = fa.send(ping(2));
    const s3 = fa.send(ping(3));
    assert.ok(fa.queuedBytes > 0);
    const closed = new ConnectionClosedError('the peer went away');
    a.failHeldWrites(closed);
    // a ConnectionClosedError from the transport is passed through as is
    for (const s of [s1, s2, s3]) await assert.rejects(s, (err) => err === closed);
    assert.equal(fa.queuedBytes, 0);
    assert.equal(a.writeCount, 1, 'the queued batch is not written after the failure');
    await assert.rejects(fa.send(ping(4)), (err) => err === closed);
  });

  test('reset() rejects sends that are queued but not yet written, and writes nothing', async () => {
    const { a, fa } = pair();
    const s1 = fa.send(ping(1));
    fa.reset();
    await assert.rejects(s1, ConnectionClosedError);
    await tick();
    assert.equal(a.writeCount, 0);
    assert.equal(a.resetCalls, 1);
    await assert.rejects(fa.send(ping(2)), ConnectionClosedError);
  });

  test('reset() during an in-flight write rejects it and the batch behind it', async () => {
    const { a, fa } = pair();
    a.holdWrites = true;
    const s1 = fa.send(ping(1));
    await tick();
    const s2 = fa.send(ping(2));
    fa.reset();
    await assert.rejects(s1, ConnectionClosedError);
    await assert.rejects(s2, ConnectionClosedError);
    assert.equal(a.writeCount, 1);
  });

  test('the peer of a reset stream reads null', async () => {
    const { fa, fb } = pair();
    const reading = fb.read();
    fa.reset();
    assert.equal(await reading, null);
  });
});

describe('FramedStream: envelope at framing time, messages encoded once', () => {
  test('a frozen message is sent as is: the request id travels beside it, not inside it', async () => {
    const { fa, fb } = pair();
    const msg = Object.freeze({ t: PING.type });
    await fa.send(msg, 7);
    await fa.send(msg, 8);
    assert.deepEqual(await fb.read(), { v: 1, t: PING.type, id: 7 });
    assert.deepEqual(await fb.read(), { v: 1, t: PING.type, id: 8 });
  });

  test('a message encoded earlier frames to the same bytes as the message itself', () => {
    const fields = { t: BLOB.type, payload: new Uint8Array([1, 2, 3]), seq: 9 };
    const encoded = encodeMessage(fields);
    for (const id of [undefined, 0, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1]) {
      assert.deepEqual(decodeMessage(frameBody(encoded, id)), decodeMessage(frameBody(fields, id)));
      assert.deepEqual(decodeMessage(frameBody(encoded, id)), { v: 1, ...fields, ...(id !== undefined && { id }) });
    }
  });

  test('raw fields: a value encoded earlier is placed as it is', () => {
    const payload = { c: 21.5, where: ['kitchen'] };
    const encoded = encodeMessage({ t: BLOB.type, seq: 1 }, { payload: encodeBody(new Uint8Array([5])) });
    assert.deepEqual(decodeMessage(frameBody(encoded)), { v: 1, t: BLOB.type, seq: 1, payload: new Uint8Array([5]) });
    const many: Record<string, unknown> = { t: BLOB.type, payload: new Uint8Array(1) };
    for (let i = 0; i < 30; i++) many[`x${i}`] = payload;
    const big = encodeMessage(many as OutboundMessage);
    assert.equal(big.count, 32);
  });
});
