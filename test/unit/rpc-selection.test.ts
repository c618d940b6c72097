import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Provider } from '../../src/registry/types.js';
import { selectProvider } from '../../src/rpc/selection.js';
import type { Selection } from '../../src/rpc/types.js';

const provider = (i: number, local = false): Provider => ({ nodeId: `n${i}`, address: { host: 'h', port: 1 + i }, metadata: {}, expires: Infinity, local });

describe('selectProvider', () => {
  it('never picks a provider that failed in this call, and finds one whenever one is left', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.boolean(),
        fc.constantFrom<Selection>('round-robin', 'random', 'local-first'),
        fc.array(fc.nat(11), { maxLength: 12 }),
        fc.array(fc.nat(11), { maxLength: 12 }),
        fc.nat(1000),
        (n, firstLocal, selection, failedIdx, suspectIdx, next) => {
          const providers = Array.from({ length: n }, (_, i) => provider(i, firstLocal && i === 0));
          const failed = [...new Set(failedIdx.filter((i) => i < n))].map((i) => `n${i}`);
          const suspects = new Set(suspectIdx.map((i) => `n${i}`));
          const p = selectProvider(providers, selection, { next }, failed, (id) => suspects.has(id));
          if (failed.length === n) return p === undefined;
          if (p === undefined || failed.includes(p.nodeId)) return false;
          // A suspect only when every usable provider is one.
          const clean = providers.some((x) => !failed.includes(x.nodeId) && !suspects.has(x.nodeId));
          const localFirst = selection === 'local-first' && p.local;
          return localFirst || !clean || !suspects.has(p.nodeId);
        },
      ),
    );
  });

  it('round-robin continues after the provider picked, also across failovers', () => {
    const providers = [0, 1, 2, 3].map((i) => provider(i));
    const state = { next: 0 };
    const picks: string[] = [];
    for (let i = 0; i < 6; i++) picks.push(selectProvider(providers, 'round-robin', state, [])!.nodeId);
    assert.deepEqual(picks, ['n0', 'n1', 'n2', 'n3', 'n0', 'n1']);
    assert.equal(selectProvider(providers, 'round-robin', state, ['n2'])!.nodeId, 'n3');
    assert.equal(selectProvider(providers, 'round-robin', state, ['n2', 'n3'])!.nodeId, 'n0');
  });
});
