import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnectionAdmission } from '../../src/transport/admission.js';

test('a source past its burst is refused until its bucket refills; other sources are not affected', () => {
  const admission = new ConnectionAdmission({ connectionRatePerSource: 10, connectionBurstPerSource: 3, connectionRate: 1000, connectionBurst: 1000 }, 0);
  const results = Array.from({ length: 5 }, () => admission.admit('10.0.0.1', 0));
  assert.deepEqual(results, [undefined, undefined, undefined, 'connection_rate_per_source', 'connection_rate_per_source']);
  assert.equal(admission.admit('10.0.0.2', 0), undefined, 'another source has its own bucket');
  assert.equal(admission.admit('10.0.0.1', 50), 'connection_rate_per_source', 'half a token after 50 ms at 10/s');
  assert.equal(admission.admit('10.0.0.1', 150), undefined, 'a whole token after 100 ms more');
});

test('the total rate bounds all sources together', () => {
  const admission = new ConnectionAdmission({ connectionRate: 1, connectionBurst: 2, connectionRatePerSource: 100, connectionBurstPerSource: 100 }, 0);
  assert.equal(admission.admit('10.0.0.1', 0), undefined);
  assert.equal(admission.admit('10.0.0.2', 0), undefined);
  assert.equal(admission.admit('10.0.0.3', 0), 'connection_rate');
  assert.equal(admission.admit('10.0.0.3', 1000), undefined);
});
