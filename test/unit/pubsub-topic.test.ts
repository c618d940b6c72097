import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  DEFAULT_MAX_TOPIC_BYTES,
  DEFAULT_MAX_TOPIC_SEGMENTS,
  InvalidTopicError,
  hasWildcard,
  literalPrefix,
  matches,
  prefixesOf,
  splitTopic,
  validatePattern,
  validateTopic,
  type TopicRule,
} from '../../src/pubsub/topic.js';
import { MaculaError } from '../../src/util/errors.js';

function rejects(fn: () => unknown, rule: TopicRule, ...fragments: string[]): InvalidTopicError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof InvalidTopicError, `expected InvalidTopicError, got ${String(caught)}`);
  assert.ok(caught instanceof MaculaError);
  assert.equal(caught.code, 'MACULA_ERR_INVALID_TOPIC');
  assert.equal(caught.rule, rule);
  for (const f of fragments) assert.ok(caught.message.includes(f), `message ${JSON.stringify(caught.message)} lacks ${JSON.stringify(f)}`);
  return caught;
}

describe('validateTopic', () => {
  it('accepts concrete topics and returns their segments', () => {
    assert.deepEqual(validateTopic('sensors.site1.r12.temp'), ['sensors', 'site1', 'r12', 'temp']);
    assert.deepEqual(validateTopic('a'), ['a']);
    assert.deepEqual(validateTopic('ünïcode.温度'), ['ünïcode', '温度']);
    assert.deepEqual(validateTopic('with space.and-dash_ok'), ['with space', 'and-dash_ok']);
  });

  it('names the empty segment and its position', () => {
    const err = rejects(() => validateTopic('a..b'), 'empty_segment');
    assert.equal(
      err.message,
      'invalid topic "a..b": empty segment at position 2; topics are dot-separated non-empty segments',
    );
    assert.equal(err.topic, 'a..b');
    rejects(() => validateTopic('.a'), 'empty_segment', 'position 1');
    rejects(() => validateTopic('a.'), 'empty_segment', 'position 2');
    rejects(() => validateTopic('.'), 'empty_segment', 'position 1');
  });

  it('rejects the empty topic', () => {
    rejects(() => validateTopic(''), 'empty', 'invalid topic ""', 'empty');
  });

  it('rejects wildcards in a published topic', () => {
    rejects(() => validateTopic('a.*'), 'wildcard_in_topic', '"a.*"', 'wildcard "*" at position 2', 'only in subscription patterns');
    rejects(() => validateTopic('#'), 'wildcard_in_topic', 'wildcard "#" at position 1');
    rejects(() => validateTopic('a.b*.c'), 'wildcard_in_topic', 'segment "b*" at position 2');
    rejects(() => validateTopic('a.x#'), 'wildcard_in_topic', 'segment "x#"');
  });

  it('counts the length in UTF-8 bytes, not characters', () => {
    assert.equal(DEFAULT_MAX_TOPIC_BYTES, 256);
    validateTopic('a'.repeat(256));
    rejects(() => validateTopic('a'.repeat(257)), 'too_long', '257 bytes', 'limit of 256 bytes');
    // 'é' is 2 bytes in UTF-8: 128 fit, 129 do not although only 129 characters.
    validateTopic('é'.repeat(128));
    rejects(() => validateTopic('é'.repeat(129)), 'too_long', '258 bytes');
    // A 4-byte character is two UTF-16 code units.
    validateTopic('😀'.repeat(64));
    rejects(() => validateTopic(`${'😀'.repeat(64)}x`), 'too_long', '257 bytes');
    // 85 × 3 bytes fits by the quick bound, 86 × 3 = 258 does not.
    validateTopic('温'.repeat(85));
    rejects(() => validateTopic('温'.repeat(86)), 'too_long', '258 bytes');
  });

  it('limits the number of segments', () => {
    assert.equal(DEFAULT_MAX_TOPIC_SEGMENTS, 16);
    validateTopic(Array(16).fill('s').join('.'));
    rejects(() => validateTopic(Array(17).fill('s').join('.')), 'too_many_segments', '17 segments', 'limit of 16');
  });

  it('honours configured limits', () => {
    const limits = { maxBytes: 8, maxSegments: 2 };
    validateTopic('abc.defg', limits);
    rejects(() => validateTopic('abc.defgh', limits), 'too_long', 'limit of 8 bytes');
    rejects(() => validateTopic('a.b.c', limits), 'too_many_segments', 'limit of 2');
    validatePattern('a.#', limits);
    rejects(() => validatePattern('a.b.#', limits), 'too_many_segments');
  });

  it('answers a topic checked again with the same limits from the check before, and checks it again under other limits', () => {
    const limits = { maxSegments: 2 };
    const first = validateTopic('a.b.c');
    assert.equal(validateTopic('a.b.c'), first, 'the same segments, not split again');
    assert.throws(() => validateTopic('a.b.c', limits), (err: unknown) => err instanceof InvalidTopicError && err.rule === 'too_many_segments');
    assert.throws(() => validateTopic('a.b.c', limits), InvalidTopicError, 'a refused topic is not remembered as valid');
    assert.deepEqual(validateTopic('a.b', limits), ['a', 'b']);
    assert.deepEqual(validateTopic('a.b.c'), ['a', 'b', 'c']);
  });

  it('remembers nothing before its first valid topic', async () => {
    // A fresh module instance: its memo is empty, so an undefined topic must not match it.
    const fresh = (await import(`../../src/pubsub/topic.js?fresh=${Date.now()}`)) as typeof import('../../src/pubsub/topic.js');
    assert.throws(() => fresh.validateTopic(undefined as unknown as string), (err: unknown) => err instanceof MaculaError && err.code === 'MACULA_ERR_INVALID_TOPIC');
  });

  it('keeps the message short for huge input', () => {
    const err = rejects(() => validateTopic('x'.repeat(10_000)), 'too_long');
    assert.ok(err.message.length < 300, err.message);
    assert.equal(err.topic.length, 10_000);
  });

  it('rejects non-strings', () => {
    rejects(() => validateTopic(42 as unknown as string), 'not_a_string', 'got number');
    rejects(() => validatePattern(undefined as unknown as string), 'not_a_string', 'got undefined');
  });
});

describe('validatePattern', () => {
  it('accepts whole-segment wildcards, "#" last only', () => {
    for (const p of ['*', '#', 'a.#', '*.#', 'a.*.#', '*.*', 'a.*.c', 'sensors.*.r12.#', 'a.b.c']) {
      assert.deepEqual(validatePattern(p), p.split('.'));
    }
  });

  it('rejects "#" before the last segment', () => {
    rejects(() => validatePattern('a.#.b'), 'multi_wildcard_not_last', 'invalid pattern "a.#.b"', '"#" at position 2', 'may only end a pattern');
    rejects(() => validatePattern('#.#'), 'multi_wildcard_not_last', 'position 1');
  });

  it('rejects a segment mixing a wildcard with other characters', () => {
    rejects(() => validatePattern('a.b*'), 'partial_wildcard', 'segment "b*" at position 2', 'must be exactly that wildcard');
    rejects(() => validatePattern('#a'), 'partial_wildcard', 'segment "#a" at position 1');
    rejects(() => validatePattern('a.**'), 'partial_wildcard');
    rejects(() => validatePattern('a.*#'), 'partial_wildcard');
  });

  it('applies the topic rules too', () => {
    rejects(() => validatePattern('a..*'), 'empty_segment', 'invalid pattern "a..*"', 'position 2', 'patterns are dot-separated');
    rejects(() => validatePattern(''), 'empty');
    rejects(() => validatePattern(`${'a.'.repeat(16)}#`), 'too_many_segments', '17 segments');
  });
});

describe('topic helpers', () => {
  it('splitTopic agrees with String.prototype.split', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', 'b', '.', 'é', '*'), maxLength: 20 }), (s) => {
        assert.deepEqual(splitTopic(s), s.split('.'));
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  it('hasWildcard', () => {
    assert.equal(hasWildcard('a.b'), false);
    assert.equal(hasWildcard('a.*'), true);
    assert.equal(hasWildcard('#'), true);
  });

  it('literalPrefix is the part before the first wildcard', () => {
    const cases: Array<[string, string]> = [
      ['a.b.c', 'a.b.c'],
      ['a.b.*', 'a.b'],
      ['a.*.c', 'a'],
      ['a.b.#', 'a.b'],
      ['a.#', 'a'],
      ['*.a', ''],
      ['*', ''],
      ['#', ''],
      ['sensors.*.r12.#', 'sensors'],
    ];
    for (const [pattern, prefix] of cases) assert.equal(literalPrefix(pattern), prefix, pattern);
  });

  it('prefixesOf lists segments + 1 prefixes, shortest first', () => {
    assert.deepEqual(prefixesOf('a.b.c'), ['', 'a', 'a.b', 'a.b.c']);
    assert.deepEqual(prefixesOf('a'), ['', 'a']);
    assert.deepEqual(prefixesOf('sensors.site1.r12.temp'), ['', 'sensors', 'sensors.site1', 'sensors.site1.r12', 'sensors.site1.r12.temp']);
  });

  it('a pattern matching a topic has its literal prefix among the topic prefixes (the DHT key scheme)', () => {
    const seg = fc.constantFrom('a', 'b', 'c');
    const topic = fc.array(seg, { minLength: 1, maxLength: 5 }).map((s) => s.join('.'));
    const pattern = fc
      .tuple(fc.array(fc.constantFrom('a', 'b', '*'), { maxLength: 5 }), fc.boolean())
      .map(([s, multi]) => (multi || s.length === 0 ? [...s, '#'] : s).join('.'));
    fc.assert(
      fc.property(pattern, topic, (p, t) => {
        validatePattern(p);
        validateTopic(t);
        const prefixes = prefixesOf(t);
        assert.equal(prefixes.length, splitTopic(t).length + 1);
        if (matches(p, t)) assert.ok(prefixes.includes(literalPrefix(p)), `${p} matches ${t}`);
      }),
      { seed: 7, numRuns: 3000 },
    );
  });
});
