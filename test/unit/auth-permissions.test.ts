import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ForbiddenError } from '../../src/auth/errors.js';
import { patternCovers, patternsOverlap, Permissions } from '../../src/auth/permissions.js';
import { matchSegments } from '../../src/pubsub/topic.js';

const seg = fc.constantFrom('a', 'b', 'c');
const topicArb = fc.array(seg, { minLength: 1, maxLength: 4 });
const patternArb = fc
  .tuple(fc.array(fc.constantFrom('a', 'b', '*'), { minLength: 0, maxLength: 4 }), fc.boolean())
  .map(([segs, hash]) => (hash ? [...segs, '#'] : segs))
  .filter((p) => p.length > 0);

/** Every topic of up to 5 segments over {a, b, c}: enough to decide coverage of the patterns above by brute force. */
const ALL_TOPICS: string[][] = [];
(function gen(prefix: string[]) {
  if (prefix.length > 0) ALL_TOPICS.push(prefix);
  if (prefix.length === 5) return;
  for (const s of ['a', 'b', 'c']) gen([...prefix, s]);
})([]);

describe('permission patterns', () => {
  it('patternCovers agrees with brute force over every small topic', () => {
    fc.assert(
      fc.property(patternArb, patternArb, (outer, inner) => {
        const brute = ALL_TOPICS.filter((t) => matchSegments(inner, t)).every((t) => matchSegments(outer, t));
        assert.equal(patternCovers(outer, inner), brute, `${outer.join('.')} covers ${inner.join('.')}`);
      }),
      { numRuns: 2000 },
    );
  });

  it('patternsOverlap agrees with brute force over every small topic', () => {
    fc.assert(
      fc.property(patternArb, patternArb, (a, b) => {
        const brute = ALL_TOPICS.some((t) => matchSegments(a, t) && matchSegments(b, t));
        assert.equal(patternsOverlap(a, b), brute, `${a.join('.')} overlaps ${b.join('.')}`);
      }),
      { numRuns: 2000 },
    );
  });

  it('a concrete topic is covered exactly when it matches', () => {
    fc.assert(
      fc.property(patternArb, topicArb, (p, t) => assert.equal(patternCovers(p, t), matchSegments(p, t))),
      { numRuns: 1000 },
    );
  });
});

describe('Permissions', () => {
  const perms = Permissions.fromSpec({
    pub: { allow: ['sensors.*.temp', 'alerts.#'], deny: ['alerts.internal.#'] },
    sub: { allow: ['sensors.#'], deny: ['sensors.secret'] },
    serve: { allow: ['math.*'] },
  });

  it('pub: allow patterns match, deny patterns win', () => {
    assert.ok(perms.allows('pub', 'sensors.r1.temp'));
    assert.ok(!perms.allows('pub', 'sensors.r1.humidity'));
    assert.ok(perms.allows('pub', 'alerts.disk'));
    assert.ok(!perms.allows('pub', 'alerts.internal.x'));
  });

  it('sub: a pattern must be covered; overlap with a deny list is filtered at delivery', () => {
    assert.ok(perms.allows('sub', 'sensors.#'));
    assert.ok(perms.allows('sub', 'sensors.*.temp'));
    assert.ok(!perms.allows('sub', '#'));
    assert.ok(!perms.allows('sub', '*.temp'));
    assert.ok(!perms.allows('sub', 'sensors.secret'));
    assert.ok(perms.deliverable('sensors.r1'));
    assert.ok(!perms.deliverable('sensors.secret'));
  });

  it('actions without a rule permit nothing; check() names the permission', () => {
    assert.ok(!perms.allows('call', 'math.add'));
    assert.ok(perms.allows('serve', 'math.add'));
    assert.throws(() => perms.check('call', 'math.add'), (err: unknown) => {
      assert.ok(err instanceof ForbiddenError);
      assert.equal(err.code, 'MACULA_ERR_FORBIDDEN');
      assert.match(err.message, /"call" permission/);
      return true;
    });
  });

  it('grants: an issuer may delegate only what its allow lists cover', () => {
    const issuer = Permissions.fromSpec({ sub: { allow: ['sensors.#'] }, pub: { allow: ['x'] } });
    assert.ok(issuer.grants(Permissions.fromSpec({ sub: { allow: ['sensors.a.*'] } })));
    assert.ok(!issuer.grants(Permissions.fromSpec({ sub: { allow: ['#'] } })));
    assert.ok(!issuer.grants(Permissions.fromSpec({ pub: { allow: ['y'] } })));
    assert.ok(!issuer.grants(Permissions.fromSpec({ admin: true })));
  });

  it('malformed specs are refused', () => {
    assert.throws(() => Permissions.fromSpec({ pub: { allow: ['a.#.b'] } }));
    assert.throws(() => Permissions.fromSpec({ pub: { allow: 'a' as unknown as string[] } }));
    assert.throws(() => Permissions.fromSpec({ pub: { allow: Array.from({ length: 65 }, (_, i) => `t${i}`) } }));
  });
});
