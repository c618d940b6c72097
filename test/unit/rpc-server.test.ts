import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RemoteCallError, NoSuchProcedureError } from '../../src/rpc/errors.js';
import { RPC_CALL, RPC_RESULT } from '../../src/rpc/messages.js';
import { RpcServer, type RpcServerInit } from '../../src/rpc/server.js';
import type { RpcAdvertiser, RpcContext, RpcPeer } from '../../src/rpc/types.js';
import type { OutboundMessage } from '../../src/wire/framed-stream.js';
import type { Fields } from '../../src/wire/schema.js';
import { ConfigError, MaculaError, TimeoutError } from '../../src/util/errors.js';
import { ERROR, PROTOCOL_VERSION, validateMessage, type Message, type MessageDef, type WireMessage } from '../../src/wire/messages.js';
import { decodeMessage, frameBody, type MessageFields } from '../../src/wire/codec.js';
import { decodeBody, encodeBody } from '../../src/wire/codec.js';

class FakeRegistry implements RpcAdvertiser {
  ads = new Map<string, { metadata: Record<string, unknown>; ttlMs: number | undefined }>();
  withdrawn: string[] = [];
  fail: Error | undefined;
  async advertise(name: string, metadata: Record<string, unknown>, options: { ttlMs?: number }): Promise<void> {
    if (this.fail) throw this.fail;
    this.ads.set(name, { metadata, ttlMs: options.ttlMs });
  }
  async unadvertise(name: string): Promise<boolean> {
    this.withdrawn.push(name);
    return this.ads.delete(name);
  }
}

const PEER: RpcPeer = { nodeIdHex: 'cd'.repeat(32), address: { host: '198.51.100.4', port: 9443 } };

function setup(init: RpcServerInit = {}) {
  type Reply = Promise<OutboundMessage | undefined> | OutboundMessage | undefined;
  let handler: ((msg: Message, peer: RpcPeer, bytes: number) => Reply) | undefined;
  const host = {
    handle<F extends Fields>(def: MessageDef<F>, h: (msg: WireMessage<F>, peer: RpcPeer, bytes: number) => Reply) {
      assert.equal(def, RPC_CALL);
      handler = h as (msg: Message, peer: RpcPeer, bytes: number) => Reply;
    },
  };
  const registry = new FakeRegistry();
  const server = new RpcServer({ transport: host, registry }, init);
  /** Delivers a CALL as the messenger would: encoded and validated on the way in, the reply checked on the way out. */
  const call = async (p: string, a?: unknown, d?: number): Promise<MessageFields | undefined> => {
    const msg = validateMessage(decodeBody(encodeBody({ v: PROTOCOL_VERSION, t: RPC_CALL.type, id: 1, p, a, ...(d ? { d } : {}) }))) as Message;
    const reply = await handler!(msg, PEER, 0);
    if (!reply) return undefined;
    // Framed and read back as the caller would see it, without the envelope.
    const { v: _v, id: _id, ...fields } = decodeMessage(frameBody(reply, 1));
    return fields as MessageFields;
  };
  return { server, registry, call };
}

describe('RpcServer', () => {
  it('advertises rpc:<procedure> with its caching policy and serves calls', async () => {
    const { server, registry, call } = setup();
    let seen: RpcContext | undefined;
    await server.register('math.add', (args: { a: number; b: number }, ctx) => {
      seen = ctx;
      return args.a + args.b;
    }, { idempotent: true, cacheTtlMs: 2_000, ttlMs: 60_000, metadata: { owner: 'team-a', idempotent: false } });
    assert.deepEqual(registry.ads.get('rpc:math.add'), { metadata: { owner: 'team-a', idempotent: true, cacheTtlMs: 2_000 }, ttlMs: 60_000 });
    assert.deepEqual(await call('math.add', { a: 2, b: 3 }), { t: RPC_RESULT.type, r: 5 });
    assert.equal(seen!.procedure, 'math.add');
    assert.deepEqual(seen!.caller, { nodeId: PEER.nodeIdHex, address: PEER.address });
    assert.equal(seen!.timeoutMs, 30_000);
    assert.deepEqual(server.procedures(), ['math.add']);
  });

  it('answers an unknown procedure with MACULA_ERR_NO_SUCH_PROCEDURE, naming it and the possible staleness', async () => {
    const { call, server } = setup();
    const reply = await call('nope');
    assert.equal(reply!.t, ERROR.type);
    assert.equal(reply!.code, 'MACULA_ERR_NO_SUCH_PROCEDURE');
    assert.match(reply!.message as string, /"nope".*registry view may be stale/);
    assert.equal(server.stats().served.no_such_procedure, 1);
  });

  it('turns handler errors into ERROR with their code (or MACULA_ERR_HANDLER) and message, never the stack', async () => {
    const { server, call } = setup();
    await server.register('fail', (kind: string) => {
      if (kind === 'typed') throw new MaculaError('E_NOT_FOUND', 'no such order 42');
      if (kind === 'plain') throw new Error('plain failure');
      if (kind === 'string') throw 'a string';
      if (kind === 'long-code') throw Object.assign(new Error('x'), { code: 'C'.repeat(65) });
      if (kind === 'long-message') throw new Error('m'.repeat(5000));
      return Promise.reject(new TypeError('async failure'));
    });
    const r = async (kind: string) => {
      const reply = await call('fail', kind);
      assert.equal(reply!.t, ERROR.type);
      assert.doesNotMatch(reply!.message as string, /\n\s+at /, 'no stack');
      return [reply!.code, reply!.message];
    };
    assert.deepEqual(await r('typed'), ['E_NOT_FOUND', 'no such order 42']);
    assert.deepEqual(await r('plain'), ['MACULA_ERR_HANDLER', 'plain failure']);
    assert.deepEqual(await r('string'), ['MACULA_ERR_HANDLER', 'a string']);
    assert.equal((await r('long-code'))[0], 'MACULA_ERR_HANDLER');
    assert.equal(((await r('long-message'))[1] as string).length, 1024);
    assert.deepEqual(await r('async'), ['MACULA_ERR_HANDLER', 'async failure']);
    assert.equal(server.stats().served.error, 6);
  });

  it('times a handler out on the server side and aborts its signal', async () => {
    const { server, call } = setup({ handlerTimeoutMs: 50 });
    let signal: AbortSignal | undefined;
    await server.register('hang', (_args, ctx) => {
      signal = ctx.signal;
      return new Promise(() => undefined);
    });
    const started = Date.now();
    const reply = await call('hang');
    assert.ok(Date.now() - started >= 45);
    assert.equal(reply!.code, 'MACULA_ERR_TIMEOUT');
    assert.match(reply!.message as string, /"hang" did not finish within 50 ms/);
    assert.equal(signal!.aborted, true);
    assert.equal(server.stats().served.timeout, 1);
    assert.equal(server.stats().running, 1, 'the hung handler is still counted as running');
  });

  it('stops at the caller\'s wait (d) when it is shorter, and sends nothing', async () => {
    const { server, call } = setup();
    let signal: AbortSignal | undefined;
    await server.register('slow', (_args, ctx) => {
      signal = ctx.signal;
      return new Promise((r) => setTimeout(r, 1_000));
    });
    assert.equal(await call('slow', undefined, 30), undefined);
    assert.equal(signal!.aborted, true);
    assert.equal(server.stats().served.deadline, 1);
  });

  it('serves calls concurrently: a slow handler does not delay a fast one', async () => {
    const { server, call } = setup();
    let release!: () => void;
    await server.register('slow', () => new Promise((r) => (release = () => r('slow'))));
    await server.register('fast', () => 'fast');
    const order: string[] = [];
    const slow = call('slow').then((r) => order.push(r!.r as string));
    const fast = call('fast').then((r) => order.push(r!.r as string));
    await fast;
    release();
    await slow;
    assert.deepEqual(order, ['fast', 'slow']);
  });

  it('refuses results that cannot be sent with MACULA_ERR_BAD_RESULT', async () => {
    const { server, call } = setup({ maxResultBytes: 100 });
    await server.register('fn', () => () => 1);
    await server.register('big', () => ({ s: 'x'.repeat(200) }));
    await server.register('bytes', () => new Uint8Array(200));
    await server.register('ok', () => undefined);
    for (const p of ['fn', 'big', 'bytes']) {
      const reply = await call(p);
      assert.equal(reply!.code, 'MACULA_ERR_BAD_RESULT', p);
    }
    assert.deepEqual(await call('ok'), { t: RPC_RESULT.type, r: undefined });
  });

  it('validates registrations and keeps none when advertising fails', async () => {
    const { server, registry } = setup();
    await server.register('p', () => 1);
    await assert.rejects(server.register('p', () => 2), /already registered/);
    await assert.rejects(server.register('q', () => 1, { cacheTtlMs: 10 }), /not idempotent/);
    await assert.rejects(server.register('', () => 1), { code: 'MACULA_ERR_INVALID_NAME' });
    await assert.rejects(server.register('x'.repeat(125), () => 1), { code: 'MACULA_ERR_INVALID_NAME' });
    await assert.rejects(server.register('r', () => 1, { timeoutMs: 0 }), ConfigError);
    registry.fail = new Error('dht down');
    await assert.rejects(server.register('s', () => 1), /dht down/);
    assert.equal(server.has('s'), false);
  });

  it('unregister() withdraws the registration and stops serving', async () => {
    const { server, registry, call } = setup();
    await server.register('p', () => 1);
    assert.equal(await server.unregister('p'), true);
    assert.equal(await server.unregister('p'), false);
    assert.deepEqual(registry.withdrawn, ['rpc:p']);
    assert.equal((await call('p'))!.code, 'MACULA_ERR_NO_SUCH_PROCEDURE');
    await server.register('a', () => 1);
    await server.register('b', () => 1);
    await server.stop();
    assert.deepEqual(server.procedures(), []);
  });

  it('invoke() runs a procedure in-process with typed errors', async () => {
    const { server } = setup({ handlerTimeoutMs: 40 });
    const args = { list: [1, 2] };
    await server.register('same', (a: unknown) => a);
    await server.register('fail', () => {
      throw new MaculaError('E_APP', 'app failure');
    });
    await server.register('hang', () => new Promise(() => undefined));
    assert.equal(await server.invoke('same', args, { timeoutMs: 1000 }), args, 'passed by reference');
    await assert.rejects(server.invoke('fail', null, { timeoutMs: 1000 }), (e: unknown) => e instanceof RemoteCallError && e.code === 'E_APP');
    await assert.rejects(server.invoke('missing', null, { timeoutMs: 1000 }), NoSuchProcedureError);
    await assert.rejects(server.invoke('hang', null, { timeoutMs: 1000 }), (e: unknown) => e instanceof RemoteCallError && e.code === 'MACULA_ERR_TIMEOUT');
    await assert.rejects(server.invoke('hang', null, { timeoutMs: 20 }), (e: unknown) => e instanceof TimeoutError && !(e instanceof RemoteCallError));
  });
});

describe('RpcServer limits', () => {
  it('refuses calls with MACULA_ERR_BUSY while maxRunning handlers run (timed-out ones included)', async () => {
    const { server, call } = setup({ maxRunning: 2, handlerTimeoutMs: 30 });
    await server.register('hang', () => new Promise(() => undefined));
    await server.register('fast', () => 'ok');
    assert.equal((await call('hang'))!.code, 'MACULA_ERR_TIMEOUT');
    assert.equal((await call('hang'))!.code, 'MACULA_ERR_TIMEOUT');
    const refused = await call('fast');
    assert.equal(refused!.code, 'MACULA_ERR_BUSY');
    assert.equal(server.stats().served.busy, 1);
  });
});
