import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BudgetExceededError, FrameBudget } from '../../src/wire/budget.js';
import { encodeBody } from '../../src/wire/codec.js';
import { encodeFrame, writeFrameHeader } from '../../src/wire/frame.js';
import { FramedStream } from '../../src/wire/framed-stream.js';
import { HELLO, PING } from '../../src/wire/messages.js';
import { createFakeStream } from '../helpers/fake-stream.js';

const KiB = 1024;

/** The header of a frame announcing `length` body bytes, and `have` of them. */
function partialFrame(length: number, have: number): Uint8Array {
  const out = new Uint8Array(4 + have);
  writeFrameHeader(out, 0, length);
  return out;
}

const hello = () => encodeFrame(encodeBody({ v: 1, t: HELLO.type, id: 1, realm: 'r', role: 'node', port: 1 }));
const ping = (id: number) => encodeFrame(encodeBody({ v: 1, t: PING.type, id }));

describe('frame budgets', () => {
  test('before HELLO a connection may buffer only the small budget: a larger frame is refused before its body is read', async () => {
    const budget = new FrameBudget({ maxPreHelloFrameBytes: 1 * KiB, maxConnectionFrameBytes: 100 * KiB });
    const stream = createFakeStream();
    const framed = new FramedStream(stream, { budget: budget.account() });
    stream.inject(partialFrame(10 * KiB, 100));
    await assert.rejects(framed.read(), (err) => err instanceof BudgetExceededError && err.reason === 'pre_hello_bytes' && err.code === 'MACULA_ERR_BUDGET');
    assert.equal(stream.isReset, true);
    assert.equal(budget.refusals.pre_hello_bytes, 1);
    assert.equal(budget.used, 0, 'nothing stays reserved');
  });

  test('a request pipelined behind HELLO is judged under the full budget once HELLO is accepted', async () => {
    const budget = new FrameBudget({ maxPreHelloFrameBytes: 1 * KiB, maxConnectionFrameBytes: 100 * KiB });
    const account = budget.account();
    const stream = createFakeStream();
    const framed = new FramedStream(stream, { budget: account });
    const big = encodeFrame(encodeBody({ v: 1, t: PING.type, id: 2, pad: new Uint8Array(20 * KiB) }));
    stream.inject(new Uint8Array(Buffer.concat([hello(), big.subarray(0, 1000)])));
    assert.equal((await framed.read())?.t, HELLO.type);
    account.greet();
    const next = framed.read();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(budget.used, big.length, 'the announced frame is reserved while it is received');
    stream.inject(big.subarray(1000));
    assert.equal((await next)?.id, 2);
    stream.inject(ping(3));
    assert.equal((await framed.read())?.id, 3);
    assert.equal(budget.used, 0);
    assert.equal(account.used, 0);
  });

  test('past HELLO: the connection budget, then the node budget (which resets only the stream)', async () => {
    const budget = new FrameBudget({ maxConnectionFrameBytes: 50 * KiB, maxNodeFrameBytes: 70 * KiB });
    const a = budget.account();
    a.greet();
    const s1 = createFakeStream();
    const f1 = new FramedStream(s1, { budget: a });
    s1.inject(partialFrame(60 * KiB, 10));
    await assert.rejects(f1.read(), (err) => err instanceof BudgetExceededError && err.reason === 'connection_bytes' && err.closesConnection);

    const s2 = createFakeStream();
    const f2 = new FramedStream(s2, { budget: a });
    s2.inject(partialFrame(40 * KiB, 10));
    const pending = f2.read();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(budget.used, 40 * KiB + 4);

    const b = budget.account();
    b.greet();
    const s3 = createFakeStream();
    const f3 = new FramedStream(s3, { budget: b });
    s3.inject(partialFrame(40 * KiB, 10));
    await assert.rejects(f3.read(), (err) => err instanceof BudgetExceededError && err.reason === 'node_bytes' && !err.closesConnection);
    assert.deepEqual([budget.refusals.connection_bytes, budget.refusals.node_bytes], [1, 1]);

    f2.reset();
    assert.equal(await pending, null);
    assert.equal(budget.used, 0, 'a reset stream gives its reservation back');
  });

  test('a frame begun must complete in time: a stalled one is refused and its stream reset', async () => {
    const budget = new FrameBudget({ frameTimeoutMs: 50 });
    const account = budget.account();
    account.greet();
    const stream = createFakeStream();
    const framed = new FramedStream(stream, { budget: account });
    stream.inject(partialFrame(1000, 10));
    // the frame timer does not keep a process alive on its own (a node's transport does)
    const alive = setTimeout(() => undefined, 5000);
    await assert.rejects(framed.read(), (err) => err instanceof BudgetExceededError && err.reason === 'frame_timeout');
    clearTimeout(alive);
    assert.equal(stream.isReset, true);
    assert.equal(budget.refusals.frame_timeout, 1);
    assert.equal(budget.used, 0);
  });

  test('frames completing in one chunk reserve nothing and start no timer', async () => {
    const budget = new FrameBudget({ frameTimeoutMs: 10 });
    const stream = createFakeStream();
    const framed = new FramedStream(stream, { budget: budget.account() });
    stream.inject(new Uint8Array(Buffer.concat([hello(), ping(2)])));
    assert.equal((await framed.read())?.t, HELLO.type);
    assert.equal((await framed.read())?.id, 2);
    const next = framed.read();
    await new Promise((resolve) => setTimeout(resolve, 40));
    stream.inject(ping(3));
    assert.equal((await next)?.id, 3, 'waiting between frames is not a stalled frame');
    assert.equal(budget.refusals.frame_timeout, 0);
  });
});
