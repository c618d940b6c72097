/** Admission of light clients: the total limit and the per-source share, with many source addresses. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientAdmission, sourceOf } from '../../src/gateway/admission.js';
import { defaultMaxClientsPerAddress, DEFAULT_MAX_CLIENTS } from '../../src/gateway/options.js';

describe('client admission', () => {
  it('counts IPv4 addresses as they are, IPv6 by their /64, mapped IPv4 as IPv4', () => {
    assert.equal(sourceOf('192.0.2.7'), '192.0.2.7');
    assert.equal(sourceOf('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(sourceOf('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
    assert.equal(sourceOf('2001:db8:1:2::99'), '2001:db8:1:2::/64');
    assert.equal(sourceOf('[2001:0db8:0001:0002:ffff::1]'), '2001:db8:1:2::/64');
    assert.equal(sourceOf('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(sourceOf('2001:db8::'), '2001:db8:0:0::/64');
    assert.equal(sourceOf('::1'), '0:0:0:0::/64');
    assert.equal(sourceOf('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(sourceOf('2001:db8:1:3::1:2.3.4.5'), '2001:db8:1:3::/64');
    assert.notEqual(sourceOf('2001:db8:1:2::1'), sourceOf('2001:db8:1:3::1'));
  });

  it('gives one address at most its share and the others the rest, and says which limit refused', () => {
    const a = new ClientAdmission(10, 4);
    for (let i = 0; i < 4; i++) assert.equal(a.admit('198.51.100.1'), undefined);
    assert.equal(a.admit('198.51.100.1'), 'max_clients_per_address', 'the flooding address is held to its share');
    // Another /64 host of the same IPv6 prefix shares its count; a different prefix does not.
    for (let i = 0; i < 4; i++) assert.equal(a.admit(`2001:db8:0:1::${i + 1}`), undefined);
    assert.equal(a.admit('2001:db8:0:1::ff'), 'max_clients_per_address');
    assert.equal(a.admit('198.51.100.2'), undefined);
    assert.equal(a.admit('203.0.113.9'), undefined);
    assert.equal(a.admit('203.0.113.10'), 'max_clients', 'every slot is taken');
    assert.deepEqual(a.stats(), { clients: 10, sources: 4, largestSourceClients: 4, refusedByReason: { max_clients: 1, max_clients_per_address: 2 } });

    a.release('198.51.100.1');
    assert.equal(a.refusalFor('198.51.100.1'), undefined, 'the address is below its share again');
    assert.equal(a.admit('203.0.113.10'), undefined, 'a freed slot goes to whoever comes next');
    assert.equal(a.admit('198.51.100.1'), 'max_clients');
    for (const host of ['203.0.113.10', '203.0.113.9', '198.51.100.2']) a.release(host);
    a.release('203.0.113.77'); // never admitted: nothing to give back
    assert.equal(a.stats().clients, 7);
    assert.equal(a.stats().sources, 2);
  });

  it('keeps most slots for others when one address floods a node with default limits', () => {
    const share = defaultMaxClientsPerAddress(DEFAULT_MAX_CLIENTS);
    assert.equal(share, 2500);
    const a = new ClientAdmission(DEFAULT_MAX_CLIENTS, share);
    let admitted = 0;
    for (let i = 0; i < DEFAULT_MAX_CLIENTS; i++) if (a.admit('127.0.0.1') === undefined) admitted++;
    assert.equal(admitted, 2500, '2,500 from one address (2,000 local clients fit)');
    for (let i = 0; i < 100; i++) assert.equal(a.admit(`10.0.${i >> 8}.${i & 255}`), undefined, 'other addresses still get in');
    assert.equal(a.stats().refusedByReason.max_clients_per_address, DEFAULT_MAX_CLIENTS - 2500);
  });

  it('derives the default share from maxClients: a quarter, at least 64, at most maxClients', () => {
    assert.equal(defaultMaxClientsPerAddress(0), 0);
    assert.equal(defaultMaxClientsPerAddress(1), 1);
    assert.equal(defaultMaxClientsPerAddress(100), 64);
    assert.equal(defaultMaxClientsPerAddress(1000), 250);
    assert.equal(defaultMaxClientsPerAddress(10_001), 2501);
  });
});
