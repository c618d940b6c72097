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

/**
 * Why a value failed its check: `what` it must be, and where, as the path
 * below the field checked (`.name`, `[3]`, ...). Built only on failure: a
 * valid message is checked without building a path or a string.
 */
interface Failure {
  below: string;
  what: string;
}

function failure(what: string): Failure {
  return { below: '', what };
}

function checkField(value: unknown, field: Field): Failure | undefined {
  if (value === undefined || value === null) {
    // `any` carries application values, where null is a value, not an absence.
    if (field.optional || (field.kind === 'any' && value === null)) return undefined;
    return failure('is missing');
  }
  switch (field.kind) {
    case 'bytes':
      if (!(value instanceof Uint8Array)) return failure('must be bytes');
      if (value.length < field.min || value.length > field.max) {
        return failure(`must be ${field.min === field.max ? field.min : `${field.min}..${field.max}`} bytes, got ${value.length}`);
      }
      return undefined;
    case 'uint':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > field.max) {
        return failure(`must be an integer in 0..${field.max}`);
      }
      return undefined;
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < field.min || value > field.max) {
        return failure(`must be an integer in ${field.min}..${field.max}`);
      }
      return undefined;
    case 'str':
      if (typeof value !== 'string') return failure('must be a string');
      if (value.length < field.min || value.length > field.max) return failure(`must be ${field.min}..${field.max} characters long`);
      return undefined;
    case 'bool':
      if (typeof value !== 'boolean') return failure('must be a boolean');
      return undefined;
    case 'arr':
      if (!Array.isArray(value)) return failure('must be an array');
      if (value.length > field.max) return failure(`has ${value.length} items, at most ${field.max} allowed`);
      for (let i = 0; i < value.length; i++) {
        const failed = checkField(value[i], field.of);
        if (failed !== undefined) return { below: `[${i}]${failed.below}`, what: failed.what };
      }
      return undefined;
    case 'obj': {
      if (!isPlainMap(value)) return failure('must be a map');
      const failed = checkMap(value, field.fields);
      return failed === undefined ? undefined : { below: `.${failed.below}`, what: failed.what };
    }
    case 'strmap': {
      if (!isPlainMap(value)) return failure('must be a map');
      let entries = 0;
      let total = 0;
      for (const key in value) {
        if (!Object.hasOwn(value, key)) continue;
        const v = value[key];
        if (++entries > field.maxEntries) return failure(`has more than ${field.maxEntries} entries`);
        if (key.length < 1 || key.length > field.maxKey) return failure(`has a key not 1..${field.maxKey} characters long`);
        if (typeof v !== 'string' || v.length > field.maxValue) {
          return { below: `.${key.slice(0, 64)}`, what: `must be a string of at most ${field.maxValue} characters` };
        }
        total += key.length + v.length;
      }
      if (total > field.maxTotal) return failure(`holds ${total} characters, at most ${field.maxTotal} allowed`);
      return undefined;
    }
    case 'enum':
      if (!field.values.includes(value as string | number)) return failure(`must be one of ${field.values.join(', ')}`);
      return undefined;
    case 'any':
      return undefined;
  }
}

/** The first field of `obj` that fails its check in `fields`, its path starting with the field's name. */
function checkMap(obj: Record<string, unknown>, fields: Fields): Failure | undefined {
  // for-in over a schema (a fixed-shape object) is as fast as a list of its names kept aside, measured.
  for (const name in fields) {
    const failed = checkField(Object.hasOwn(obj, name) ? obj[name] : undefined, fields[name]!);
    if (failed !== undefined) return { below: name + failed.below, what: failed.what };
  }
  return undefined;
}

/**
 * Validates `obj` against `fields`; unknown extra fields are ignored (forward compatibility).
 * Only own properties count: a field named like an Object.prototype member
 * ("toString", "constructor", ...) that the peer left out is missing.
 */
export function checkFields(obj: Record<string, unknown>, fields: Fields, prefix = ''): void {
  const failed = checkMap(obj, fields);
  if (failed !== undefined) throw new ProtocolError('invalid_message', `field "${prefix}${failed.below}" ${failed.what}`);
}
