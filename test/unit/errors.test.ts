import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DhtRemoteError } from '../../src/dht/errors.js';
import { RemoteCallError } from '../../src/rpc/errors.js';
import { fromWire, MaculaError, RemoteError, StoppedError, toWire } from '../../src/util/errors.js';

test("StoppedError's message reads as a sentence", () => {
  assert.equal(StoppedError.of('pub/sub').message, 'pub/sub is stopped');
  const notListening = new StoppedError('the node is not listening yet; start() it first');
  assert.equal(notListening.message, 'the node is not listening yet; start() it first');
  assert.equal(notListening.code, 'MACULA_ERR_STOPPED');
  assert.match(new StoppedError().message, /^this component is stopped; /);
});

test('toWire keeps clean codes, never a stack, and cuts long messages', () => {
  assert.deepEqual(toWire(new RemoteCallError('E_OUT_OF_STOCK', 'item 7 is out of stock', 'shop.buy', 'ab')), {
    code: 'E_OUT_OF_STOCK',
    message: 'item 7 is out of stock',
  });
  assert.equal(toWire({ code: 'not clean', message: 'x' }).code, 'MACULA_ERR_HANDLER');
  assert.equal(toWire('a string').message, 'a string');
  assert.equal(toWire(new Error('m'.repeat(5000))).message.length, 1024);
  assert.doesNotMatch(toWire(new Error('boom')).message, /at /);
});

test('fromWire gives a RemoteError with the same code and message; one code rule both ways', () => {
  const err = fromWire({ code: 'E_APP', message: 'it failed' });
  assert.ok(err instanceof RemoteError);
  assert.equal(err.code, 'E_APP');
  assert.equal(err.message, 'it failed');
  assert.equal(fromWire({ code: 'bad code!', message: '' }).code, 'MACULA_ERR_HANDLER');
});

test('RPC and DHT remote errors are RemoteErrors carrying the remote code', () => {
  const rpc = new RemoteCallError('E_APP', 'it failed', 'p', 'ab');
  const dht = new DhtRemoteError('MACULA_ERR_LIMIT', 'peer answered STORE with MACULA_ERR_LIMIT: full');
  for (const e of [rpc, dht]) {
    assert.ok(e instanceof RemoteError);
    assert.ok(e instanceof MaculaError);
  }
  assert.equal(dht.code, 'MACULA_ERR_LIMIT');
  assert.equal(rpc.name, 'RemoteCallError');
});

const sources = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));

test('no MaculaError is built with a raw code outside the errors modules', () => {
  const raw = sources('src').filter((f) => !f.endsWith('/errors.ts') && /new MaculaError\(/.test(readFileSync(f, 'utf8')));
  assert.deepEqual(raw, []);
});

test('no ERROR reply is built from a code literal: it comes from an error class, through toWire', () => {
  // `t: ERROR.type` followed, within the same object literal, by `code: '…'`
  const literal = /t: ERROR\.type,[^}]*?\bcode: ['"`]/;
  const raw = sources('src').filter((f) => literal.test(readFileSync(f, 'utf8')));
  assert.deepEqual(raw, []);
});
