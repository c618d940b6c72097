import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { TopicTrie } from '../../src/pubsub/topic-trie.js';
import { InvalidTopicError, matches, validateTopic } from '../../src/pubsub/topic.js';
import { seededRandom } from '../../src/util/seeded-random.js';

/** [pattern, topic, matches?]: the wildcard semantics both matchers must implement. */
const SEMANTICS: Array<[string, string, boolean]> = [
  // exact
  ['a', 'a', true],
  ['a', 'b', false],
  ['a.b', 'a.b', true],
  ['a.b', 'a', false],
  ['a', 'a.b', false],
  ['a.b.c', 'a.b.d', false],
  // `*` matches exactly one segment, never zero, never two
  ['*', 'a', true],
  ['*', 'a.b', false],
  ['a.*', 'a.b', true],
  ['a.*', 'a', false],
  ['a.*', 'a.b.c', false],
  ['*.b', 'a.b', true],
  ['*.b', 'b', false],
  ['a.*.c', 'a.b.c', true],
  ['a.*.c', 'a.c', false],
  ['a.*.c', 'a.b.b.c', false],
  ['*.*', 'a.b', true],
  ['*.*', 'a', false],
  // `#` matches zero or more segments
  ['#', 'a', true],
  ['#', 'a.b.c', true],
  ['#', 'x.y.z.w.v', true],
  ['a.#', 'a', true],
  ['a.#', 'a.b', true],
  ['a.#', 'a.b.c', true],
  ['a.#', 'b', false],
  ['a.#', 'b.a', false],
  ['a.b.#', 'a', false],
  ['a.b.#', 'a.b', true],
  ['a.b.#', 'a.c.b', false],
  // `*` and `#` together
  ['*.#', 'a', true],
  ['*.#', 'a.b.c', true],
  ['a.*.#', 'a', false],
  ['a.*.#', 'a.b', true],
  ['a.*.#', 'a.b.c.d', true],
  ['*.b.#', 'a.b', true],
  ['*.b.#', 'a.c.b', false],
  ['sensors.*.r12.#', 'sensors.site1.r12', true],
  ['sensors.*.r12.#', 'sensors.site1.r12.temp', true],
  ['sensors.*.r12.#', 'sensors.site1.r13.temp', false],
  ['sensors.*.r12.#', 'sensors.r12.temp', false],
];

describe('wildcard semantics table', () => {
  for (const [pattern, topic, expected] of SEMANTICS) {
    it(`${pattern} ${expected ? 'matches' : 'does not match'} ${topic}`, () => {
      assert.equal(matches(pattern, topic), expected, 'naive matcher');
      const trie = new TopicTrie<string>();
      trie.add(pattern, 'v');
      assert.deepEqual(trie.match(topic), expected ? ['v'] : [], 'trie');
    });
  }

  it('all table patterns in one trie give what the table says', () => {
    const trie = new TopicTrie<number>();
    SEMANTICS.forEach(([pattern], i) => trie.add(pattern, i));
    for (const topic of new Set(SEMANTICS.map(([, t]) => t))) {
      const expected = SEMANTICS.map(([p], i) => [p, i] as const)
        .filter(([p]) => matches(p, topic))
        .map(([, i]) => i);
      assert.deepEqual(trie.match(topic).sort((a, b) => a - b), expected, topic);
    }
  });
});

describe('TopicTrie', () => {
  it('stores each (pattern, value) once', () => {
    const trie = new TopicTrie<string>();
    assert.equal(trie.add('a.*', 'x'), true);
    assert.equal(trie.add('a.*', 'x'), false);
    assert.equal(trie.add('a.b', 'x'), true);
    assert.equal(trie.add('a.b', 'x'), false);
    assert.equal(trie.size, 2);
    assert.equal(trie.patternCount, 2);
    assert.deepEqual(trie.match('a.b').sort(), ['x', 'x']);
  });

  it('returns a value once per matching subscription; matchUnique once', () => {
    const trie = new TopicTrie<string>();
    trie.add('a.b', 's1');
    trie.add('a.*', 's1');
    trie.add('a.#', 's1');
    trie.add('#', 's2');
    assert.deepEqual(trie.match('a.b').sort(), ['s1', 's1', 's1', 's2']);
    assert.deepEqual(trie.matchUnique('a.b').sort(), ['s1', 's2']);
    let calls = 0;
    assert.equal(trie.forEachMatch('a.b', () => calls++), 4);
    assert.equal(calls, 4);
  });

  it('accepts the segments validateTopic returned', () => {
    const trie = new TopicTrie<number>();
    trie.add('a.*.c', 1);
    trie.add('a.b.c', 2);
    const segs = validateTopic('a.b.c');
    assert.deepEqual(trie.match('a.b.c', segs).sort(), [1, 2]);
    const seen: number[] = [];
    trie.forEachMatch('a.b.c', (v) => seen.push(v), segs);
    assert.deepEqual(seen.sort(), [1, 2]);
  });

  it('matches again from inside a forEachMatch callback without disturbing it', () => {
    // `a.b.c.d` and `a.#` call back before the walk has read the segments `a.*.c.d` needs.
    const trie = new TopicTrie<string>();
    trie.add('a.b.c.d', 'e');
    trie.add('a.#', 'y');
    trie.add('a.*.c.d', 'x');
    trie.add('p.q.r.s', 'z');
    trie.add('p.*.r.s', 'w');
    const seen: string[] = [];
    const inner: string[][] = [];
    const n = trie.forEachMatch('a.b.c.d', (v) => {
      seen.push(v);
      inner.push(trie.match('p.q.r.s').sort());
      const visited: string[] = [];
      trie.forEachMatch('p.q.r.s', (u) => visited.push(u));
      inner.push(visited.sort());
    });
    assert.equal(n, 3);
    assert.deepEqual(seen.sort(), ['e', 'x', 'y']);
    assert.deepEqual(inner, Array.from({ length: 6 }, () => ['w', 'z']));
    assert.deepEqual(trie.match('a.b.c.d').sort(), ['e', 'x', 'y'], 'the shared buffer is free again');
  });

  it('refuses invalid patterns', () => {
    const trie = new TopicTrie<number>();
    assert.throws(() => trie.add('a.#.b', 1), InvalidTopicError);
    assert.throws(() => trie.add('a..b', 1), InvalidTopicError);
    assert.throws(() => trie.add('a.b*', 1), InvalidTopicError);
    assert.throws(() => new TopicTrie<number>({ maxSegments: 2 }).add('a.b.c', 1), /limit of 2/);
    assert.equal(trie.size, 0);
  });

  it('remove reports presence and prunes emptied nodes', () => {
    const trie = new TopicTrie<string>();
    trie.add('a.b.c.d', 'x');
    trie.add('a.*.c.#', 'x');
    trie.add('a.*.c.#', 'y');
    trie.add('*.*.*', 'z');
    assert.equal(trie.remove('a.b.c.d', 'nobody'), false);
    assert.equal(trie.remove('a.*.c', 'x'), false);
    assert.equal(trie.remove('a.#.c', 'x'), false);
    assert.equal(trie.remove('a..c', 'x'), false);
    assert.ok(trie.nodeCount > 0);
    assert.equal(trie.remove('a.*.c.#', 'x'), true);
    assert.equal(trie.remove('a.*.c.#', 'x'), false);
    assert.equal(trie.hasPattern('a.*.c.#'), true);
    assert.equal(trie.has('a.*.c.#', 'y'), true);
    assert.equal(trie.remove('a.*.c.#', 'y'), true);
    assert.equal(trie.hasPattern('a.*.c.#'), false);
    assert.equal(trie.nodeCount, 3, 'only the *.*.* branch is left');
    assert.equal(trie.remove('*.*.*', 'z'), true);
    assert.equal(trie.remove('a.b.c.d', 'x'), true);
    assert.equal(trie.size, 0);
    assert.equal(trie.patternCount, 0);
    assert.equal(trie.nodeCount, 0);
    assert.deepEqual([...trie.patterns()], []);
    assert.deepEqual(trie.match('a.b.c.d'), []);
  });

  it('lists its patterns and entries', () => {
    const trie = new TopicTrie<number>();
    const entries: Array<[string, number]> = [
      ['a.b', 1],
      ['a.b', 2],
      ['a.*', 1],
      ['#', 3],
      ['a.#', 4],
      ['*.b.#', 5],
    ];
    for (const [p, v] of entries) trie.add(p, v);
    assert.deepEqual([...trie.patterns()].sort(), ['#', '*.b.#', 'a.#', 'a.*', 'a.b']);
    const key = ([p, v]: [string, number]) => `${p} ${v}`;
    assert.deepEqual([...trie.entries()].map(key).sort(), entries.map(key).sort());
    trie.clear();
    assert.equal(trie.size, 0);
    assert.equal(trie.nodeCount, 0);
    assert.deepEqual([...trie.entries()], []);
  });

  it('keeps a pattern with many values exact under adds and removals in any order', () => {
    // Long value lists switch to an index (and back when they shrink): add, remove and has must not notice.
    for (const pattern of ['a.b', 'a.*', 'a.#']) {
      const trie = new TopicTrie<number>();
      const live = new Set<number>();
      const rand = seededRandom(7);
      for (let step = 0; step < 4000; step++) {
        const v = Math.floor(rand() * 200);
        if (rand() < 0.6) {
          assert.equal(trie.add(pattern, v), !live.has(v), `add ${v}`);
          live.add(v);
        } else {
          assert.equal(trie.remove(pattern, v), live.delete(v), `remove ${v}`);
        }
        assert.equal(trie.has(pattern, v), live.has(v));
        assert.equal(trie.size, live.size);
        if (step % 97 === 0) assert.deepEqual(trie.match('a.b').sort((x, y) => x - y), [...live].sort((x, y) => x - y));
      }
      for (const v of live) assert.equal(trie.has(pattern, v), true);
      for (const v of [...live]) assert.equal(trie.remove(pattern, v), true);
      assert.equal(trie.hasPattern(pattern), false);
      assert.equal(trie.nodeCount, 0);
    }
  });

  it('keeps many value lists apart while they grow, shrink, empty and take freed room again', () => {
    // Lists of every length up to past the index threshold, interleaved, so that blocks move, are freed and reused.
    const patterns = ['a.b', 'a.c', 'b', 'a.*', '*.b', 'a.#', '#', '*', 'a.b.#'];
    const topics = ['a.b', 'a.c', 'b', 'a', 'c.b', 'a.b.c'];
    const trie = new TopicTrie<number>();
    const live = new Map<string, Set<number>>(patterns.map((p) => [p, new Set()]));
    const rand = seededRandom(13);
    const check = (): void => {
      for (const t of topics) {
        const expected = [...live].flatMap(([p, vs]) => (matches(p, t) ? [...vs] : [])).sort((x, y) => x - y);
        assert.deepEqual(trie.match(t).sort((x, y) => x - y), expected, `topic ${t}`);
      }
      const entries = [...trie.entries()].map(([p, v]) => `${p} ${v}`).sort();
      assert.deepEqual(entries, [...live].flatMap(([p, vs]) => [...vs].map((v) => `${p} ${v}`)).sort());
    };
    for (let step = 0; step < 6000; step++) {
      const p = patterns[Math.floor(rand() * patterns.length)]!;
      const values = live.get(p)!;
      // Phases that favour adding, then removing, so that lists swing between empty and ~70 values.
      const adding = rand() < (Math.floor(step / 1000) % 2 === 0 ? 0.75 : 0.25);
      const v = Math.floor(rand() * 70);
      if (adding) {
        assert.equal(trie.add(p, v), !values.has(v), `add ${p} ${v}`);
        values.add(v);
      } else {
        assert.equal(trie.remove(p, v), values.delete(v), `remove ${p} ${v}`);
      }
      assert.equal(trie.hasPattern(p), values.size > 0);
      if (step % 50 === 0) check();
    }
    check();
    for (const [p, vs] of live) for (const v of vs) assert.equal(trie.remove(p, v), true);
    assert.equal(trie.size, 0);
    assert.equal(trie.nodeCount, 0);
  });

  it('compares values as a Set does (NaN equals NaN, -0 equals 0)', () => {
    for (const pattern of ['a.b', 'a.*']) {
      const trie = new TopicTrie<number>();
      assert.equal(trie.add(pattern, NaN), true);
      assert.equal(trie.add(pattern, NaN), false);
      assert.equal(trie.add(pattern, 0), true);
      assert.equal(trie.add(pattern, -0), false);
      assert.equal(trie.has(pattern, NaN), true);
      assert.equal(trie.has(pattern, -0), true);
      assert.equal(trie.match('a.b').length, 2);
      assert.equal(trie.remove(pattern, NaN), true);
      assert.equal(trie.has(pattern, NaN), false);
      assert.equal(trie.remove(pattern, -0), true);
      assert.equal(trie.size, 0);
    }
  });

  it('holds many exact and wildcard patterns, then forgets them removed in any order', () => {
    // Enough patterns to grow the exact table several times and to shrink it again as they go.
    const trie = new TopicTrie<number>();
    const rand = seededRandom(11);
    const patterns: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const segs = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => (rand() < 0.1 ? '*' : `s${Math.floor(rand() * 40)}`));
      if (rand() < 0.1) segs.push('#');
      patterns.push(segs.join('.'));
    }
    const live = new Map<string, [string, number]>();
    patterns.forEach((p, i) => {
      const v = i % 3;
      assert.equal(trie.add(p, v), !live.has(`${p} ${v}`));
      live.set(`${p} ${v}`, [p, v]);
    });
    const topics = Array.from({ length: 200 }, () =>
      Array.from({ length: 1 + Math.floor(rand() * 5) }, () => `s${Math.floor(rand() * 40)}`).join('.'),
    );
    const check = (): void => {
      assert.equal(trie.size, live.size);
      assert.deepEqual([...trie.patterns()].sort(), [...new Set([...live.values()].map(([p]) => p))].sort());
      for (const t of topics) {
        const expected = [...live.values()].filter(([p]) => matches(p, t)).map(([, v]) => v);
        assert.deepEqual(trie.match(t).sort(), expected.sort(), `topic ${t}`);
      }
    };
    check();
    const order = [...live.values()].sort(() => rand() - 0.5);
    order.forEach(([p, v], i) => {
      assert.equal(trie.remove(p, v), true);
      assert.equal(trie.remove(p, v), false);
      live.delete(`${p} ${v}`);
      if (i % 500 === 0) check();
    });
    check();
    assert.equal(trie.patternCount, 0);
    assert.equal(trie.nodeCount, 0);
  });

  it('property: match equals the naive matcher as a multiset, before and after removals', () => {
    // A tiny alphabet makes shared prefixes, duplicate entries and wildcard edge cases frequent.
    const pattern = fc.oneof(
      fc
        .tuple(fc.array(fc.constantFrom('a', 'b', 'c', '*'), { maxLength: 4 }), fc.boolean())
        .map(([s, multi]) => (multi || s.length === 0 ? [...s, '#'] : s).join('.')),
      fc.constantFrom('#', '*', '*.#', 'a.*.#', 'a.#', '*.*'),
    );
    const topic = fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 5 }).map((s) => s.join('.'));
    const entry = fc.tuple(pattern, fc.integer({ min: 0, max: 4 }));
    fc.assert(
      fc.property(
        fc.array(entry, { maxLength: 25 }),
        fc.array(topic, { minLength: 1, maxLength: 8 }),
        fc.array(fc.boolean(), { maxLength: 25 }),
        (entries, topics, removeMask) => {
          const trie = new TopicTrie<number>();
          const live = new Map<string, [string, number]>();
          for (const [p, v] of entries) {
            assert.equal(trie.add(p, v), !live.has(`${p} ${v}`));
            live.set(`${p} ${v}`, [p, v]);
          }
          const check = (): void => {
            assert.equal(trie.size, live.size);
            assert.equal(trie.patternCount, new Set([...live.values()].map(([p]) => p)).size);
            for (const t of topics) {
              const expected = [...live.values()].filter(([p]) => matches(p, t)).map(([, v]) => v);
              assert.deepEqual(trie.match(t).sort(), expected.sort(), `topic ${t}`);
              const visited: number[] = [];
              trie.forEachMatch(t, (v) => visited.push(v));
              assert.deepEqual(visited.sort(), expected);
            }
          };
          check();
          entries.forEach(([p, v], i) => {
            if (!removeMask[i]) return;
            assert.equal(trie.remove(p, v), live.delete(`${p} ${v}`));
          });
          check();
          for (const [p, v] of live.values()) assert.equal(trie.remove(p, v), true);
          live.clear();
          check();
          assert.equal(trie.nodeCount, 0, 'every node pruned once empty');
        },
      ),
      { seed: 20240611, numRuns: 3000 },
    );
  });

  it('property: interleaved adds and removals keep match, forEachMatch, has and the counters equal to the naive answer', () => {
    const pattern = fc.oneof(
      fc
        .tuple(fc.array(fc.constantFrom('a', 'b', 'c', '*'), { maxLength: 4 }), fc.boolean())
        .map(([s, multi]) => (multi || s.length === 0 ? [...s, '#'] : s).join('.')),
      fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 4 }).map((s) => s.join('.')),
    );
    const topic = fc.array(fc.constantFrom('a', 'b', 'c', 'd'), { minLength: 1, maxLength: 5 }).map((s) => s.join('.'));
    const op = fc.tuple(fc.boolean(), pattern, fc.integer({ min: 0, max: 3 }));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), fc.array(topic, { minLength: 1, maxLength: 6 }), (ops, topics) => {
        const trie = new TopicTrie<number>();
        const live = new Map<string, [string, number]>();
        for (const [adding, p, v] of ops) {
          const key = `${p} ${v}`;
          if (adding) {
            assert.equal(trie.add(p, v), !live.has(key));
            live.set(key, [p, v]);
          } else {
            assert.equal(trie.remove(p, v), live.delete(key));
          }
          assert.equal(trie.has(p, v), live.has(key));
          assert.equal(trie.size, live.size);
          for (const t of topics) {
            const expected = [...live.values()].filter(([q]) => matches(q, t)).map(([, w]) => w).sort();
            assert.deepEqual(trie.match(t).sort(), expected, `topic ${t}`);
            const visited: number[] = [];
            assert.equal(trie.forEachMatch(t, (w) => visited.push(w), t.split('.')), expected.length);
            assert.deepEqual(visited.sort(), expected);
          }
        }
        assert.equal(trie.patternCount, new Set([...live.values()].map(([q]) => q)).size);
        assert.deepEqual([...trie.patterns()].sort(), [...new Set([...live.values()].map(([q]) => q))].sort());
        for (const [p, v] of live.values()) assert.equal(trie.remove(p, v), true);
        assert.equal(trie.nodeCount, 0, 'every node pruned once empty');
      }),
      { seed: 20261202, numRuns: 1000 },
    );
  });
});
