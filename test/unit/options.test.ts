/** Options: one validator, defaults defined once and exported in the shape of MeshNodeOptions, each section reaching its component. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.js';
import { DEFAULTS } from '../../src/node/defaults.js';
import { MeshNode, type MeshNodeOptions } from '../../src/node/mesh-node.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { ConfigError } from '../../src/util/errors.js';
import { intOption, numberOption, oneOfOption } from '../../src/util/options.js';

/** A node that is never started: its components are built, nothing listens. */
const node = (options: MeshNodeOptions = {}) => new MeshNode(Identity.generate(), { memoryNetwork: new MemoryNetwork(), ...options });

describe('option validation', () => {
  it('names the option, what it accepts and what it got', () => {
    assert.equal(intOption('pool option maxConnections', 5, 1), 5);
    assert.throws(() => intOption('pool option maxConnections', 0, 1), { code: 'MACULA_ERR_CONFIG', message: 'pool option maxConnections must be an integer ≥ 1, got 0' });
    assert.throws(() => intOption('DHT option k', 40, 1, 32), { message: 'DHT option k must be an integer in 1..32, got 40' });
    assert.throws(() => intOption('x', 1.5, 0), ConfigError);
    assert.throws(() => numberOption('liveness baseBackoffMs', 0, 0, { exclusiveMin: true }), { message: 'liveness baseBackoffMs must be a number > 0, got 0' });
    assert.throws(() => numberOption('t', Number.NaN, 0), ConfigError);
    assert.throws(() => oneOfOption('selection', 'best', ['random', 'round-robin']), { message: 'selection must be one of random, round-robin, got best' });
  });

  it('checks the options of every section of a node', () => {
    assert.throws(() => node({ session: { maxInFlight: 0 } }), { code: 'MACULA_ERR_CONFIG', message: /session option maxInFlight/ });
    assert.throws(() => node({ pool: { idleTimeoutMs: -1 } }), { message: /pool option idleTimeoutMs/ });
    assert.throws(() => node({ transport: { maxStreams: 0 } }), { message: /transport option maxStreams/ });
    assert.throws(() => node({ dht: { k: 0 } }), { message: /DHT option k/ });
    assert.throws(() => node({ pubsub: { fanoutConcurrency: 0 } }), { message: /pub\/sub option fanoutConcurrency/ });
    assert.throws(() => node({ gateway: { maxClients: -1 } }), { message: /gateway option maxClients/ });
    assert.throws(() => node({ rpc: { client: { maxAttempts: 0 } } }), { message: /RPC option maxAttempts/ });
    assert.throws(() => node({ web: { port: 0, maxSessions: 0 } }), { code: 'MACULA_ERR_CONFIG', message: 'web option maxSessions must be an integer ≥ 1, got 0' });
    assert.throws(() => node({ web: { port: 70000 } }), { message: /web option port must be an integer in 0\.\.65535, got 70000/ });
    assert.throws(() => node({ reachability: { probes: 0 } }), { code: 'MACULA_ERR_CONFIG', message: /reachability option probes/ });
    assert.throws(() => node({ reachability: { intervalMs: 0 } }), { message: 'reachability option intervalMs must be a number > 0, got 0' });
    assert.throws(() => node({ reachability: {}, relay: { limits: { maxCircuits: 0 } } }), { code: 'MACULA_ERR_CONFIG', message: /relay option limits\.maxCircuits/ });
    assert.throws(() => node({ reachability: {}, relay: { limits: { circuitBytesPerSecond: -1 } } }), { message: /relay option limits\.circuitBytesPerSecond/ });
    // a relayed address names at most 3 relays: asking for more is refused, not silently cut
    assert.throws(() => node({ reachability: {}, relay: { client: { relays: 4 } } }), { message: 'relay option client.relays must be an integer in 1..3, got 4' });
  });
});

describe('defaults', () => {
  it('a node built without options runs with DEFAULTS', () => {
    const n = node();
    assert.equal(n.pool.maxConnections, DEFAULTS.pool.maxConnections);
    assert.ok(DEFAULTS.pool.maxConnections > DEFAULTS.gateway.maxClients, 'room for mesh peers beyond the light clients');
    assert.equal(n.pool.idleTimeoutMs, DEFAULTS.pool.idleTimeoutMs);
    assert.notEqual(DEFAULTS.pool.idleTimeoutMs, DEFAULTS.transport.idleTimeoutMs, 'the pool reaper is not the QUIC idle timeout');
    assert.equal(n.messenger.requestTimeoutMs, DEFAULTS.session.requestTimeoutMs);
    assert.equal(n.messenger.maxInFlight, DEFAULTS.session.maxInFlight);
    assert.equal(n.messenger.maxFrameSize, DEFAULTS.session.maxFrameSize);
    assert.equal(n.messenger.realm, DEFAULTS.node.realm);
    assert.equal(n.dht.options.k, DEFAULTS.dht.k);
    assert.equal(n.dht.store.maxRecords, DEFAULTS.dht.recordStore.maxRecords);
    assert.equal(n.rpc.timeoutMs, DEFAULTS.rpc.client.timeoutMs);
    assert.equal(n.rpcServer.handlerTimeoutMs, DEFAULTS.rpc.server.handlerTimeoutMs);
    assert.deepEqual(n.pubsub.options, DEFAULTS.pubsub);
    assert.equal(n.gateway.maxClients, DEFAULTS.gateway.maxClients);
    assert.equal(n.gateway.maxClientsPerAddress, DEFAULTS.gateway.maxClientsPerAddress);
    assert.ok(Object.isFrozen(DEFAULTS) && Object.isFrozen(DEFAULTS.session), 'nobody changes the defaults by accident');
  });

  it('the web gateway, the reachability check and relaying have their sections, and run with them', () => {
    const n = node({ reachability: {}, web: { port: 0 } });
    assert.equal(n.web!.host, DEFAULTS.web.host);
    assert.equal(n.web!.maxSessions, DEFAULTS.web.maxSessions);
    assert.equal(n.web!.maxStreamsPerSession, DEFAULTS.web.maxStreamsPerSession);
    assert.equal(n.reachability!.probes, DEFAULTS.reachability.probes);
    assert.equal(n.reachability!.intervalMs, DEFAULTS.reachability.intervalMs);
    assert.equal(n.reachability!.maxConcurrentDialBacks, DEFAULTS.reachability.maxConcurrentDialBacks);
    assert.equal(n.relayServer!.maxCircuits, DEFAULTS.relay.limits.maxCircuits);
    assert.equal(n.relayServer!.circuitMaxDurationMs, DEFAULTS.relay.limits.circuitMaxDurationMs);
    assert.equal(n.relayClient!.wanted, DEFAULTS.relay.client.relays);
    assert.equal(n.relayClient!.retryMs, DEFAULTS.relay.client.retryMs);
    assert.ok(Object.isFrozen(DEFAULTS.web) && Object.isFrozen(DEFAULTS.reachability) && Object.isFrozen(DEFAULTS.relay.limits) && Object.isFrozen(DEFAULTS.relay.client));
  });

  it('each section reaches its component', () => {
    const n = node({
      pool: { idleTimeoutMs: 4321 },
      session: { requestTimeoutMs: 1234, maxInFlight: 7 },
      dht: { k: 8 },
      rpc: { client: { timeoutMs: 777 }, server: { handlerTimeoutMs: 999 } },
      pubsub: { fanoutConcurrency: 3 },
      gateway: { maxClients: 50 },
      reachability: { probes: 5 },
      relay: { limits: { maxReservations: 9 }, client: { relays: 3 } },
      web: { port: 0, host: '::1', maxSessions: 12 },
    });
    assert.equal(n.pool.idleTimeoutMs, 4321);
    assert.equal(n.messenger.requestTimeoutMs, 1234);
    assert.equal(n.messenger.maxInFlight, 7);
    assert.equal(n.dht.options.k, 8);
    assert.equal(n.rpc.timeoutMs, 777);
    assert.equal(n.rpcServer.handlerTimeoutMs, 999);
    assert.equal(n.pubsub.options.fanoutConcurrency, 3);
    assert.equal(n.gateway.maxClients, 50);
    assert.equal(n.pool.maxConnections, 50 + DEFAULTS.node.meshConnectionMargin);
    assert.equal(n.reachability!.probes, 5);
    assert.equal(n.relayServer!.maxReservations, 9);
    assert.equal(n.relayClient!.wanted, 3);
    assert.equal(n.web!.host, '::1');
    assert.equal(n.web!.maxSessions, 12);
  });
});
