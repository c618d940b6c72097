/**
 * Values for the CBOR codec's tests: edge integers, floats and strings, and
 * random values of every kind the writer and the reader handle, nested, with
 * some that cbor-x handles in its own ways (tags, bigints, other typed arrays,
 * maps without a prototype).
 */
import fc from 'fast-check';

const EDGE_INTS = [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, Number.MAX_SAFE_INTEGER];
export const EDGE_NUMBERS = [
  ...EDGE_INTS,
  ...EDGE_INTS.map((n) => -n),
  -(2 ** 32) - 1,
  -0,
  0.5,
  -1.5,
  1e300,
  Number.MIN_VALUE,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
];
export const EDGE_STRINGS = [
  '',
  'a',
  'x'.repeat(23),
  'x'.repeat(24),
  'x'.repeat(63),
  'x'.repeat(64),
  'x'.repeat(255),
  'x'.repeat(256),
  'x'.repeat(70_000),
  'é'.repeat(12), // 24 bytes from 12 units: the head outgrows the one its length in units asked for
  'é'.repeat(100),
  '€'.repeat(30),
  '😀',
  '😀'.repeat(40),
  '\ud800', // lone surrogates: written as cbor-x writes them, whatever the length
  'a\udc00b',
  '\ud83d'.repeat(70),
  'x'.repeat(70) + '\udfff',
];

export const str = fc.oneof(fc.constantFrom(...EDGE_STRINGS), fc.string({ unit: 'binary', maxLength: 90 }), fc.string({ unit: 'binary-ascii', maxLength: 30 }));
const num = fc.oneof(fc.constantFrom(...EDGE_NUMBERS), fc.integer(), fc.double(), fc.maxSafeInteger());
const bytes = fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(new Uint8Array(0), new Uint8Array(70_000).fill(5), Buffer.from('buffer')));
/** Values cbor-x writes in its own ways (tags, bigints, other typed arrays, maps without a prototype): the writer passes them on. */
const other = fc.constantFrom<unknown>(new Date(1_700_000_000_000), new Map([['k', 1]]), new Set([1]), 10n ** 30n, -5n, new Uint16Array([1, 2]), Object.assign(Object.create(null), { n: 1 }));
const leaf = fc.oneof(str, num, bytes, fc.boolean(), fc.constant(null), fc.constant(undefined), other);
export const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, fc.array(tie('value'), { maxLength: 5 }), fc.dictionary(str, tie('value'), { maxKeys: 5 })),
})).value;
