/**
 * A tiny declarative validator for decoded messages. Hand-written rather than
 * a schema library because it runs on every frame of the hot path: each
 * check is a couple of typeof/length comparisons, no allocation on success.
 *
 * Failure throws ProtocolError('invalid_message') naming the offending field.
 */
import { ProtocolError } from '../util/errors.js';

type FieldSpec =
  | { kind: 'bytes'; min: number; max: number; optional?: boolean }
  | { kind: 'uint'; max: number; optional?: boolean }
  | { kind: 'int'; min: number; max: number; optional?: boolean }
  | { kind: 'str'; min: number; max: number; optional?: boolean }
  | { kind: 'bool'; optional?: boolean }
  | { kind: 'arr'; of: Field; max: number; optional?: boolean }
  | { kind: 'obj'; fields: Fields; optional?: boolean }
  | { kind: 'enum'; values: readonly (string | number)[]; optional?: boolean }
  | { kind: 'strmap'; maxEntries: number; maxKey: number; maxValue: number; maxTotal: number; optional?: boolean }
  | { kind: 'any'; optional?: boolean };

/**
 * One field's check; `T` is the TypeScript type of a value that passed it
 * (type-level only: `Infer` turns a message's fields into the type its
 * handlers receive, so the schema is written once).
 */
export type Field<T = unknown> = FieldSpec & { readonly __type?: T };

export type Fields = Record<string, Field>;

/** An optional field: may be absent (or null) on the wire. */
type Optional<T> = Field<T> & { optional: true };

/** The type of a value that passed `F`'s check. */
export type FieldType<F> = F extends Field<infer T> ? T : never;

type OptionalKeys<F extends Fields> = { [K in keyof F]: F[K] extends { optional: true } ? K : never }[keyof F];

/** The fields of a validated message: required fields present, optional ones possibly absent. Read-only: received messages are shared. */
export type Infer<F extends Fields> = {
  readonly [K in Exclude<keyof F, OptionalKeys<F>>]: FieldType<F[K]>;
} & {
  readonly [K in OptionalKeys<F>]?: FieldType<F[K]>;
};

/** Field constructors: `f.bytes(32, 32)`, `f.opt(f.str(0, 64))`, ... */
export const f = {
  bytes: (min: number, max: number): Field<Uint8Array> => ({ kind: 'bytes', min, max }),
  uint: (max = Number.MAX_SAFE_INTEGER): Field<number> => ({ kind: 'uint', max }),
  int: (min: number, max: number): Field<number> => ({ kind: 'int', min, max }),
  str: (min: number, max: number): Field<string> => ({ kind: 'str', min, max }),
  bool: (): Field<boolean> => ({ kind: 'bool' }),
  arr: <T>(of: Field<T>, max: number): Field<T[]> => ({ kind: 'arr', of, max }),
  obj: <F extends Fields>(fields: F): Field<Infer<F>> => ({ kind: 'obj', fields }),
  enum: <const V extends readonly (string | number)[]>(...values: V): Field<V[number]> => ({ kind: 'enum', values }),
  /** A map of string keys (1..maxKey characters) to strings (≤ maxValue), at most maxEntries, keys and values ≤ maxTotal characters together. */
  strmap: (maxEntries: number, maxKey: number, maxValue: number, maxTotal: number): Field<Readonly<Record<string, string>>> => ({ kind: 'strmap', maxEntries, maxKey, maxValue, maxTotal }),
  /** Any CBOR value (e.g. application payloads); size is bounded by the frame limit. */
  any: (): Field<unknown> => ({ kind: 'any' }),
  opt: <T>(field: Field<T>): Optional<T> => ({ ...field, optional: true }) as Optional<T>,
};

/**
 * True for a plain decoded CBOR map (an object literal), false for arrays,
 * byte strings and the class instances that CBOR tags decode to (Date, Set,
 * Map, typed arrays, RegExp, Error, unknown tags).
 */
export function isPlainMap(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function fail(path: string, what: string): never {
  throw new ProtocolError('invalid_message', `field "${path}" ${what}`);
}

function checkField(value: unknown, field: Field, path: string): void {
  if (value === undefined || value === null) {
    // `any` carries application values, where null is a value, not an absence.
    if (field.optional || (field.kind === 'any' && value === null)) return;
    fail(path, 'is missing');
  }
  switch (field.kind) {
    case 'bytes':
      if (!(value instanceof Uint8Array)) fail(path, 'must be bytes');
      if (value.length < field.min || value.length > field.max) {
        fail(path, `must be ${field.min === field.max ? field.min : `${field.min}..${field.max}`} bytes, got ${value.length}`);
      }
      return;
    case 'uint':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > field.max) {
        fail(path, `must be an integer in 0..${field.max}`);
      }
      return;
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < field.min || value > field.max) {
        fail(path, `must be an integer in ${field.min}..${field.max}`);
      }
      return;
    case 'str':
      if (typeof value !== 'string') fail(path, 'must be a string');
      if (value.length < field.min || value.length > field.max) {
        fail(path, `must be ${field.min}..${field.max} characters long`);
      }
      return;
    case 'bool':
      if (typeof value !== 'boolean') fail(path, 'must be a boolean');
      return;
    case 'arr':
      if (!Array.isArray(value)) fail(path, 'must be an array');
      if (value.length > field.max) fail(path, `has ${value.length} items, at most ${field.max} allowed`);
      for (let i = 0; i < value.length; i++) checkField(value[i], field.of, `${path}[${i}]`);
      return;
    case 'obj':
      if (!isPlainMap(value)) fail(path, 'must be a map');
      checkFields(value, field.fields, `${path}.`);
      return;
    case 'strmap': {
      if (!isPlainMap(value)) fail(path, 'must be a map');
      let entries = 0;
      let total = 0;
      for (const key in value) {
        if (!Object.hasOwn(value, key)) continue;
        const v = value[key];
        if (++entries > field.maxEntries) fail(path, `has more than ${field.maxEntries} entries`);
        if (key.length < 1 || key.length > field.maxKey) fail(path, `has a key not 1..${field.maxKey} characters long`);
        if (typeof v !== 'string' || v.length > field.maxValue) fail(`${path}.${key.slice(0, 64)}`, `must be a string of at most ${field.maxValue} characters`);
        total += key.length + v.length;
      }
      if (total > field.maxTotal) fail(path, `holds ${total} characters, at most ${field.maxTotal} allowed`);
      return;
    }
    case 'enum':
      if (!field.values.includes(value as string | number)) fail(path, `must be one of ${field.values.join(', ')}`);
      return;
    case 'any':
      return;
  }
}

/**
 * Validates `obj` against `fields`; unknown extra fields are ignored (forward compatibility).
 * Only own properties count: a field named like an Object.prototype member
 * ("toString", "constructor", ...) that the peer left out is missing.
 */
export function checkFields(obj: Record<string, unknown>, fields: Fields, prefix = ''): void {
  for (const name in fields) checkField(Object.hasOwn(obj, name) ? obj[name] : undefined, fields[name]!, prefix + name);
}
