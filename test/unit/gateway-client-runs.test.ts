/**
 * How a light client's publisher forms runs (wire/run.ts): only from
 * publishes made in one event-loop turn, broken by a topic change or
 * headers, bounded in count and bytes; numbers, the window and failures
 * stay per publish.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ClientPublisher, MAX_SEND_PAYLOAD_BYTES, type PublishError } from '../../src/gateway/client-publisher.js';
import { GW_SEND } from '../../src/gateway/messages.js';
import { InvalidPayloadError } from '../../src/pubsub/errors.js';
import { decodeMessage, frameBody, type EncodedMessage } from '../../src/wire/codec.js';
import type { Message } from '../../src/wire/messages.js';
import { MAX_RUN, MAX_RUN_BYTES } from '../../src/wire/run.js';

function publisher(window = 10_000): { pub: ClientPublisher; sent: Message[]; errors: PublishError[] } {
  const sent: Message[] = [];
  const errors: PublishError[] = [];
  const pub = new ClientPublisher(window, 64 * 1024 * 1024, (msg: EncodedMessage) => void sent.push(decodeMessage(frameBody(msg))), (err) => void errors.push(err));
  return { pub, sent, errors };
}

/** What went out, as [topic, first number, payloads] (payloads of a single GW_SEND as a one-item list). */
const shape = (sent: readonly Message[]) => sent.map((m) => [m.tp, m.n, m.k === undefined ? [m.d] : m.d]);

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('client publisher runs', () => {
  test('publishes to one topic in one turn go out as one GW_SEND run at the end of the turn', async () => {
    const { pub, sent } = publisher();
    const done = Promise.all([pub.publish('a.b', 1), pub.publish('a.b', 'two'), pub.publish('a.b', { three: 3 })]);
    assert.equal(sent.length, 0, 'nothing sent before the turn ends');
    await done;
    assert.equal(sent.length, 1, 'handed to the connection once publish() resolved');
    assert.deepEqual(sent[0], { v: 1, t: GW_SEND.type, tp: 'a.b', n: 1, k: 3, d: [1, 'two', { three: 3 }] });
    assert.deepEqual({ sent: pub.stats().sent, runs: pub.stats().runs, pending: pub.stats().pending }, { sent: 3, runs: 1, pending: 3 });
  });

  test('publishes awaited one by one never wait for a run: each goes out alone', async () => {
    const { pub, sent } = publisher();
    for (let i = 0; i < 3; i++) {
      await pub.publish('a.b', i);
      assert.equal(sent.length, i + 1, 'handed on before publish() resolved');
    }
    assert.deepEqual(shape(sent), [['a.b', 1, [0]], ['a.b', 2, [1]], ['a.b', 3, [2]]]);
    assert.ok(sent.every((m) => m.k === undefined));
    assert.equal(pub.stats().runs, 0);
  });

  test('a topic change or headers end a run, and order is kept', async () => {
    const { pub, sent } = publisher();
    await Promise.all([
      pub.publish('a', 1),
      pub.publish('a', 2),
      pub.publish('b', 3),
      pub.publish('b', 4),
      pub.publish('a', 5),
      pub.publish('a', 6, { x: 'y' }),
      pub.publish('a', 7),
      pub.publish('a', 8),
    ]);
    assert.deepEqual(shape(sent), [['a', 1, [1, 2]], ['b', 3, [3, 4]], ['a', 5, [5]], ['a', 6, [6]], ['a', 7, [7, 8]]]);
    assert.deepEqual(sent[3]!.h, { x: 'y' });
    assert.equal(sent[2]!.k, undefined, 'a run of one is a plain GW_SEND');
  });

  test('runs are bounded in count and in payload bytes', async () => {
    const { pub, sent } = publisher();
    await Promise.all(Array.from({ length: MAX_RUN + 5 }, (_, i) => pub.publish('c', i)));
    assert.deepEqual(
      sent.map((m) => [m.n, m.k]),
      [
        [1, MAX_RUN],
        [MAX_RUN + 1, 5],
      ],
    );
    sent.length = 0;
    const big = new Uint8Array(MAX_RUN_BYTES / 3 - 100);
    await Promise.all(Array.from({ length: 5 }, () => pub.publish('c', big)));
    assert.deepEqual(
      sent.map((m) => m.k),
      [3, 2],
    );
    sent.length = 0;
    await Promise.all([pub.publish('c', new Uint8Array(MAX_RUN_BYTES + 10)), pub.publish('c', 1), pub.publish('c', 2)]);
    assert.deepEqual(
      sent.map((m) => m.k),
      [undefined, 2],
      'a payload larger than a run goes alone',
    );
  });

  test('byte payloads of every head size and other values share a run, each decoding to what was published', async () => {
    const { pub, sent } = publisher();
    const payloads: unknown[] = [new Uint8Array(0), new Uint8Array(23).fill(1), new Uint8Array(24).fill(2), 'text', new Uint8Array(255).fill(3), new Uint8Array(256).fill(4), { n: 1 }, new Uint8Array(20_000).fill(5), Buffer.from('buf')];
    await Promise.all(payloads.map((d) => pub.publish('h', d)));
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.k, payloads.length);
    const got = sent[0]!.d as unknown[];
    assert.deepEqual(
      got.map((d) => (d instanceof Uint8Array ? [...d] : d)),
      payloads.map((d) => (d instanceof Uint8Array ? [...d] : d)),
    );
    sent.length = 0;
    // After a run of one payload larger than a run's bytes, runs are formed as before.
    await Promise.all([pub.publish('h', new Uint8Array(MAX_RUN_BYTES * 2).fill(6)), pub.publish('h', new Uint8Array([7])), pub.publish('h', new Uint8Array([8]))]);
    assert.deepEqual(
      sent.map((m) => (m.k === undefined ? (m.d as Uint8Array).length : (m.d as Uint8Array[]).map((d) => [...d]))),
      [MAX_RUN_BYTES * 2, [[7], [8]]],
    );
  });

  test('pending publishes and bytes stay exact past thousands unacknowledged, acknowledged in any steps', async () => {
    const { pub, errors } = publisher(20_000);
    const count = 9000;
    const size = (i: number) => 1 + (i % 300);
    await Promise.all(Array.from({ length: count }, (_, i) => pub.publish(`t.${i % 7}`, new Uint8Array(size(i)))));
    const bytesOf = (from: number, to: number) => {
      let sum = 0;
      for (let n = from; n <= to; n++) {
        const s = size(n - 1);
        sum += (s < 24 ? 1 : s < 256 ? 2 : 3) + s + `t.${(n - 1) % 7}`.length + 16;
      }
      return sum;
    };
    assert.deepEqual({ pending: pub.stats().pending, bytes: pub.stats().pendingBytes }, { pending: count, bytes: bytesOf(1, count) });
    for (const n of [1, 77, 4100, 8999]) {
      pub.acknowledged(n);
      assert.deepEqual({ pending: pub.stats().pending, bytes: pub.stats().pendingBytes }, { pending: count - n, bytes: bytesOf(n + 1, count) });
    }
    pub.failed(9000, 'MACULA_ERR_FORBIDDEN', 'not allowed');
    assert.equal(errors[0]!.topic, `t.${8999 % 7}`);
    pub.acknowledged(count);
    assert.deepEqual({ pending: pub.stats().pending, bytes: pub.stats().pendingBytes }, { pending: 0, bytes: 0 });
  });

  test('the window counts publishes: acknowledging n + k - 1 lets the next run out in one turn', async () => {
    const { pub, sent } = publisher(4);
    const all = Array.from({ length: 8 }, (_, i) => pub.publish('w', i));
    await turn();
    assert.deepEqual(
      sent.map((m) => [m.n, m.k]),
      [[1, 4]],
    );
    assert.deepEqual({ pending: pub.stats().pending, waiting: pub.stats().waiting }, { pending: 4, waiting: 4 });
    pub.acknowledged(4);
    await Promise.all(all);
    assert.deepEqual(
      sent.map((m) => [m.n, m.k]),
      [
        [1, 4],
        [5, 4],
      ],
    );
    let flushed = false;
    const flush = pub.flush(10_000).then(() => (flushed = true));
    await turn();
    assert.equal(flushed, false);
    pub.acknowledged(8);
    await flush;
  });

  test('a failure names the one publish of a run, with its topic; an unencodable payload takes no number and leaves the run intact', async () => {
    const { pub, sent, errors } = publisher();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const results = await Promise.allSettled([pub.publish('f', 1), pub.publish('f', cyclic), pub.publish('f', 2)]);
    assert.ok(results[1]!.status === 'rejected' && results[1].reason instanceof InvalidPayloadError);
    assert.deepEqual(shape(sent), [['f', 1, [1, 2]]]);
    pub.failed(2, 'MACULA_ERR_FORBIDDEN', 'not allowed');
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.seq, 2);
    assert.equal(errors[0]!.topic, 'f');
    pub.acknowledged(2);
    await assert.rejects(pub.flush(1000), (err: PublishError) => err.seq === 2);
  });

  test('a payload too large for one frame is refused at once; a send that throws at the end of the turn fails each publish of its run', async () => {
    const { pub, sent } = publisher();
    await assert.rejects(pub.publish('g', new Uint8Array(MAX_SEND_PAYLOAD_BYTES + 1)), InvalidPayloadError);
    assert.equal(pub.stats().sent, 0, 'no number used');
    await pub.publish('g', new Uint8Array(MAX_SEND_PAYLOAD_BYTES - 16));
    assert.equal(sent.length, 1);

    const errors: PublishError[] = [];
    const broken = new ClientPublisher(16, 1 << 20, () => {
      throw Object.assign(new Error('the stream is gone'), { code: 'MACULA_ERR_CLOSED' });
    }, (err) => void errors.push(err));
    await Promise.all([broken.publish('g', 1), broken.publish('g', 2)]);
    assert.deepEqual(
      errors.map((e) => [e.seq, e.code, e.topic]),
      [
        [1, 'MACULA_ERR_CLOSED', 'g'],
        [2, 'MACULA_ERR_CLOSED', 'g'],
      ],
    );
    assert.equal(broken.stats().failed, 2);
  });
});
