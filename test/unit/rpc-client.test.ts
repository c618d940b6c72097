import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RemoteError } from '../../src/session/peer-session.js';
import type { Provider } from '../../src/registry/types.js';
import { RpcClient, type RpcClientInit } from '../../src/rpc/client.js';
import {
  BadArgumentsError,
  InvalidProcedureError,
  NoProvidersError,
  NoSuchProcedureError,
  RemoteCallError,
  RpcTimeoutError,
  RpcUnavailableError,
  TooManyInFlightError,
} from '../../src/rpc/errors.js';
import { RPC_CALL, RPC_RESULT } from '../../src/rpc/messages.js';
import type { CallOutcome, LocalInvoker, RpcRegistry, RpcRequester, RpcTarget } from '../../src/rpc/types.js';
import { DialError, TimeoutError } from '../../src/util/errors.js';
import { decodeMessage, frameBody, type MessageFields } from '../../src/wire/codec.js';
import type { OutboundMessage } from '../../src/wire/framed-stream.js';
import type { Message } from '../../src/wire/messages.js';

type Behaviour = 'ok' | 'down' | 'hang' | 'busy' | 'app-error' | 'no-such' | 'slow';

const id = (n: number) => n.toString(16).padStart(64, '0');

function provider(n: number, metadata: Record<string, unknown> = {}, local = false): Provider {
  return { nodeId: id(n), address: { host: '10.0.0.1', port: 9000 + n }, metadata, expires: Infinity, local };
}

class FakeRegistry implements RpcRegistry {
  realm = 'test-realm';
  services = new Map<string, readonly Provider[]>();
  invalidated: string[] = [];
  lookups = 0;
  hang = false;
  lookupCached(name: string): readonly Provider[] | undefined {
    return this.hang ? undefined : this.services.get(name) ?? [];
  }
  lookup(name: string): Promise<readonly Provider[]> {
    this.lookups++;
    if (this.hang) return new Promise(() => undefined);
    return Promise.resolve(this.services.get(name) ?? []);
  }
  invalidate(name: string): void {
    this.invalidated.push(name);
  }
}

interface Sent {
  nodeId: string;
  msg: MessageFields;
  timeoutMs: number;
}

/** Behaves like the Messenger: ERROR answers reject with RemoteError, no answer rejects with TimeoutError. */
class FakeTransport implements RpcRequester {
  behaviour = new Map<string, Behaviour>();
  sent: Sent[] = [];
  request(target: RpcTarget, out: OutboundMessage, options: { timeoutMs?: number }): Promise<Message> {
    const timeoutMs = options.timeoutMs!;
    // What the provider would read: framed, decoded and validated, without the envelope.
    const { v: _v, id: _id, ...msg } = decodeMessage(frameBody(out, 1));
    this.sent.push({ nodeId: target.nodeId, msg, timeoutMs });
    const b = this.behaviour.get(target.nodeId) ?? 'ok';
    const answer = (): Message => ({ v: 1, t: RPC_RESULT.type, r: { from: target.nodeId, args: msg.a } });
    switch (b) {
      case 'ok':
        return Promise.resolve(answer());
      case 'slow':
        return new Promise((r) => setTimeout(() => r(answer()), 20));
      case 'down':
        return Promise.reject(new DialError(`${target.address.host}:${target.address.port}`, 'nobody answers'));
      case 'hang':
        return new Promise((_, reject) => setTimeout(() => reject(new TimeoutError('RPC_CALL', timeoutMs)), timeoutMs));
      case 'busy':
        return Promise.reject(new RemoteError('MACULA_ERR_BUSY', 'too many requests in flight'));
      case 'app-error':
        return Promise.reject(new RemoteError('E_OUT_OF_STOCK', 'item 7 is out of stock'));
      case 'no-such':
        return Promise.reject(new RemoteError('MACULA_ERR_NO_SUCH_PROCEDURE', 'not here'));
    }
  }
}

function setup(providers: Provider[], init: RpcClientInit = {}, extra: { server?: LocalInvoker; clock?: { now(): number } } = {}) {
  const registry = new FakeRegistry();
  registry.services.set('rpc:proc', providers);
  const transport = new FakeTransport();
  const observed: [number, CallOutcome][] = [];
  const client = new RpcClient({ transport, registry, observe: (ms, o) => observed.push([ms, o]), ...extra }, init);
  return { registry, transport, client, observed };
}

const counts = (sent: Sent[]) => sent.reduce((m, s) => m.set(s.nodeId, (m.get(s.nodeId) ?? 0) + 1), new Map<string, number>());

describe('RpcClient selection', () => {
  it('round-robin spreads calls evenly across 3 providers', async () => {
    const { client, transport } = setup([provider(1), provider(2), provider(3)]);
    for (let i = 0; i < 300; i++) await client.call('proc', i);
    assert.deepEqual([...counts(transport.sent).values()], [100, 100, 100]);
    const { msg, timeoutMs } = transport.sent[0]!;
    assert.deepEqual(msg, { t: RPC_CALL.type, p: 'proc', a: 0, d: timeoutMs });
  });

  it('random uses every provider', async () => {
    const { client, transport } = setup([provider(1), provider(2), provider(3)]);
    for (let i = 0; i < 300; i++) await client.call('proc', i, { selection: 'random' });
    const c = counts(transport.sent);
    assert.equal(c.size, 3);
    for (const n of c.values()) assert.ok(n > 50, `uneven: ${[...c.values()]}`);
  });

  it('local-first calls this node in-process, and others only when it is not a provider', async () => {
    const invoked: unknown[] = [];
    const server: LocalInvoker = { invoke: async (_p, args) => (invoked.push(args), 'local') };
    const { client, transport, registry } = setup([provider(0, {}, true), provider(1), provider(2)], { selection: 'local-first' }, { server });
    for (let i = 0; i < 5; i++) assert.equal(await client.call('proc', i), 'local');
    assert.deepEqual(invoked, [0, 1, 2, 3, 4]);
    assert.equal(transport.sent.length, 0);
    registry.services.set('rpc:proc', [provider(1), provider(2)]);
    await client.call('proc');
    await client.call('proc');
    assert.deepEqual([...counts(transport.sent).keys()], [id(1), id(2)]);
  });
});

describe('RpcClient failover', () => {
  it('fails over on connection failure, keeps the cached providers and then avoids the failed one', async () => {
    const { client, transport, registry } = setup([provider(1), provider(2), provider(3)]);
    transport.behaviour.set(id(1), 'down');
    const r = (await client.call('proc', 'x')) as { from: string };
    assert.equal(r.from, id(2));
    assert.deepEqual(transport.sent.map((s) => s.nodeId), [id(1), id(2)]);
    assert.deepEqual(registry.invalidated, [], 'an unreachable provider is suspect, the registry view is not stale');
    assert.equal(client.stats().failovers, 1);
    transport.sent = [];
    for (let i = 0; i < 6; i++) await client.call('proc');
    assert.ok(!transport.sent.some((s) => s.nodeId === id(1)), 'the failed provider is not tried while others answer');
  });

  it('fails over on timeout within the call deadline, giving each attempt a fair share', async () => {
    const { client, transport } = setup([provider(1), provider(2), provider(3)]);
    transport.behaviour.set(id(1), 'hang');
    const started = Date.now();
    const r = (await client.call('proc', null, { timeoutMs: 300 })) as { from: string };
    assert.equal(r.from, id(2));
    assert.ok(Date.now() - started < 300);
    const [first, second] = transport.sent;
    assert.ok(first!.timeoutMs >= 95 && first!.timeoutMs <= 100, `a third of the budget for the first of 3 attempts: ${first!.timeoutMs}`);
    assert.ok(second!.timeoutMs >= 85 && second!.timeoutMs <= 101, `half of what is left: ${second!.timeoutMs}`);
  });

  it('makes at most 3 attempts, never the same provider twice', async () => {
    const providers = [1, 2, 3, 4, 5].map((n) => provider(n));
    const { client, transport, observed } = setup(providers);
    for (const p of providers) transport.behaviour.set(p.nodeId, 'down');
    await assert.rejects(client.call('proc'), (err: unknown) => {
      assert.ok(err instanceof RpcUnavailableError);
      assert.equal(err.code, 'MACULA_ERR_UNAVAILABLE');
      assert.equal(err.attempts.length, 3);
      return true;
    });
    const tried = transport.sent.map((s) => s.nodeId);
    assert.equal(tried.length, 3);
    assert.equal(new Set(tried).size, 3);
    assert.equal(observed[0]![1], 'unavailable');
  });

  it('with 2 providers makes 2 attempts, and reports a timeout when they time out', async () => {
    const { client, transport } = setup([provider(1), provider(2)]);
    transport.behaviour.set(id(1), 'hang');
    transport.behaviour.set(id(2), 'hang');
    await assert.rejects(client.call('proc', null, { timeoutMs: 100 }), (err: unknown) => {
      assert.ok(err instanceof RpcTimeoutError && err instanceof TimeoutError);
      assert.equal(err.code, 'MACULA_ERR_TIMEOUT');
      assert.match(err.message, /"proc" timed out after 100 ms \[2 attempts/);
      return true;
    });
    assert.equal(transport.sent.length, 2);
    assert.equal(client.stats().calls.timeout, 1);
  });

  it('does not retry a remote handler error and surfaces it typed', async () => {
    const { client, transport } = setup([provider(1), provider(2), provider(3)]);
    transport.behaviour.set(id(1), 'app-error');
    await assert.rejects(client.call('proc'), (err: unknown) => {
      assert.ok(err instanceof RemoteCallError);
      assert.equal(err.code, 'E_OUT_OF_STOCK');
      assert.equal(err.message, 'item 7 is out of stock');
      assert.equal(err.nodeId, id(1));
      assert.equal(err.procedure, 'proc');
      return true;
    });
    assert.equal(transport.sent.length, 1);
    assert.equal(client.stats().calls.remote_error, 1);
  });

  it('tries another provider when one is busy; all busy is TooManyInFlightError', async () => {
    const { client, transport, registry } = setup([provider(1), provider(2)]);
    transport.behaviour.set(id(1), 'busy');
    assert.equal(((await client.call('proc')) as { from: string }).from, id(2));
    assert.deepEqual(registry.invalidated, [], 'a busy provider is not stale');
    transport.behaviour.set(id(2), 'busy');
    await assert.rejects(client.call('proc'), (err: unknown) => err instanceof TooManyInFlightError && err.code === 'MACULA_ERR_BUSY');
    assert.equal(client.stats().calls.busy, 1);
  });

  it('fails over from a provider that no longer serves the procedure; NoSuchProcedureError when none does', async () => {
    const { client, transport, registry } = setup([provider(1), provider(2)]);
    transport.behaviour.set(id(1), 'no-such');
    assert.equal(((await client.call('proc')) as { from: string }).from, id(2));
    assert.deepEqual(registry.invalidated, ['rpc:proc'], 'a provider that no longer serves it proves the registry view stale');
    transport.behaviour.set(id(2), 'no-such');
    await assert.rejects(client.call('proc'), (err: unknown) => {
      assert.ok(err instanceof NoSuchProcedureError);
      assert.equal(err.code, 'MACULA_ERR_NO_SUCH_PROCEDURE');
      assert.match(err.message, /stale/);
      return true;
    });
  });
});

describe('RpcClient errors', () => {
  it('rejects arguments that are not CBOR-encodable before sending anything', async () => {
    const { client, transport, observed } = setup([provider(1)], { maxArgsBytes: 1000 });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const bad of [() => 1, { f: () => 1 }, Symbol('s'), cyclic, 'x'.repeat(2000)]) {
      await assert.rejects(client.call('proc', bad), (err: unknown) => {
        assert.ok(err instanceof BadArgumentsError);
        assert.equal(err.code, 'MACULA_ERR_BAD_ARGS');
        assert.match(err.message, /arguments of "proc"/);
        return true;
      });
    }
    assert.equal(transport.sent.length, 0);
    assert.ok(observed.every(([, o]) => o === 'bad_args'));
  });

  it('says when nobody provides the procedure, and rejects invalid names', async () => {
    const { client, registry } = setup([]);
    await assert.rejects(client.call('proc'), (err: unknown) => {
      assert.ok(err instanceof NoProvidersError);
      assert.equal(err.code, 'MACULA_ERR_NO_PROVIDERS');
      assert.equal(err.message, 'no node provides "proc" in realm test-realm; is a server running and registered?');
      return true;
    });
    await assert.rejects(client.call('bad\nname'), InvalidProcedureError);
    registry.hang = true;
    await assert.rejects(client.call('proc', null, { timeoutMs: 30 }), RpcTimeoutError);
    assert.deepEqual(client.stats().calls, { ok: 0, remote_error: 0, timeout: 1, no_providers: 1, unavailable: 0, busy: 0, bad_args: 1 });
  });

  it('counts calls in flight and reports latency with the outcome', async () => {
    const { client, transport, observed } = setup([provider(1)]);
    transport.behaviour.set(id(1), 'slow');
    const p = client.call('proc');
    assert.equal(client.stats().inFlight, 1);
    await p;
    assert.equal(client.stats().inFlight, 0);
    assert.equal(observed.length, 1);
    assert.equal(observed[0]![1], 'ok');
    assert.ok(observed[0]![0] >= 15);
  });
});

describe('RpcClient result cache', () => {
  const T0 = 1_700_000_000_000;

  it('answers repeated identical calls of an idempotent procedure from the cache within its TTL', async () => {
    const clock = { t: T0, now() { return this.t; } };
    const meta = { idempotent: true, cacheTtlMs: 1_000 };
    const { client, transport } = setup([provider(1, meta), provider(2, meta)], {}, { clock });
    const a = await client.call('proc', { q: 'x', n: [1, 2] });
    const b = await client.call('proc', { q: 'x', n: [1, 2] });
    assert.equal(b, a, 'served from the cache');
    assert.equal(transport.sent.length, 1);
    await client.call('proc', { q: 'y' });
    assert.equal(transport.sent.length, 2, 'other arguments miss');
    clock.t += 1_001;
    await client.call('proc', { q: 'x', n: [1, 2] });
    assert.equal(transport.sent.length, 3, 'expired after the TTL');
    const s = client.stats();
    assert.equal(s.resultCacheHits, 1);
    assert.equal(s.resultCacheMisses, 3);
    assert.equal(s.resultCacheSize, 2);
  });

  it('does not cache procedures that are not idempotent for every provider, nor errors', async () => {
    const { client, transport } = setup([provider(1, { idempotent: true, cacheTtlMs: 1_000 }), provider(2)]);
    await client.call('proc', 1);
    await client.call('proc', 1);
    assert.equal(transport.sent.length, 2);
    const only = setup([provider(1, { idempotent: true, cacheTtlMs: 1_000 })]);
    only.transport.behaviour.set(id(1), 'app-error');
    await assert.rejects(only.client.call('proc', 1), RemoteCallError);
    await assert.rejects(only.client.call('proc', 1), RemoteCallError);
    assert.equal(only.transport.sent.length, 2);
  });

  it('keeps a bounded number of results', async () => {
    const meta = { idempotent: true, cacheTtlMs: 60_000 };
    const { client } = setup([provider(1, meta)], { resultCache: { maxEntries: 10 } });
    for (let i = 0; i < 50; i++) await client.call('proc', i);
    assert.equal(client.stats().resultCacheSize, 10);
  });
});
