/**
 * One failure, one class: a failed handler is a RemoteCallError with the
 * handler's code, whether the caller is an embedded node or a light client
 * calling through a gateway.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MaculaClient } from '../../src/client/client.js';
import { RemoteCallError } from '../../src/rpc/errors.js';
import { MaculaError, RemoteError } from '../../src/util/errors.js';
import { createTestnet, type Testnet } from '../helpers/testnet.js';

class OutOfStockError extends MaculaError {
  constructor() {
    super('E_OUT_OF_STOCK', 'item 7 is out of stock; order another');
  }
}

describe('a failed RPC seen embedded and through the gateway', () => {
  let net: Testnet;
  let client: MaculaClient;

  before(async () => {
    net = await createTestnet(2, { transport: 'quic' });
    await net.nodes[0]!.register('shop.buy', () => {
      throw new OutOfStockError();
    });
    await net.nodes[0]!.register('shop.crash', () => {
      throw new Error('the handler crashed');
    });
    client = await MaculaClient.connect({ node: net.nodes[1]!.listenAddress!, timeoutMs: 5000 });
  });
  after(async () => {
    await client?.close();
    await net?.destroy();
  });

  for (const [procedure, code, message] of [
    ['shop.buy', 'E_OUT_OF_STOCK', 'item 7 is out of stock; order another'],
    ['shop.crash', 'MACULA_ERR_HANDLER', 'the handler crashed'],
  ] as const) {
    it(`${procedure}: same class, code and message on both paths`, async () => {
      const embedded = await net.nodes[1]!.call(procedure, {}).then(
        () => assert.fail('the call succeeded'),
        (e: unknown) => e,
      );
      const viaGateway = await client.call(procedure, {}).then(
        () => assert.fail('the call succeeded'),
        (e: unknown) => e,
      );
      for (const err of [embedded, viaGateway]) {
        assert.ok(err instanceof RemoteCallError, `${(err as Error).name}: ${(err as Error).message}`);
        assert.ok(err instanceof RemoteError);
        assert.equal(err.code, code);
        assert.equal(err.message, message);
        assert.equal(err.procedure, procedure);
      }
      assert.equal((embedded as RemoteCallError).nodeId, net.nodes[0]!.nodeId, 'embedded: the node whose handler failed');
    });
  }
});
