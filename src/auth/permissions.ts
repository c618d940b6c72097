/**
 * Per-subject permissions of a credential: for each action an allow list and
 * a deny list of patterns in the pub/sub syntax (`*` one segment, `#` the
 * rest). Procedure names are matched the same way, segment by segment.
 *
 * - `pub`, `call`, `serve` take a concrete topic or procedure name: permitted
 *   when an allow pattern matches it and no deny pattern does.
 * - `sub` takes a pattern: permitted when an allow pattern covers every topic
 *   the pattern can match and no deny pattern does. A permitted pattern that
 *   still overlaps a deny pattern (`sensors.#` with `sensors.secret` denied)
 *   is allowed, and `deliverable()` filters the denied topics out of it.
 * - `admin`: may see other peers' addresses and IDs (`stats`, `peers`).
 */
import { MULTI_WILDCARD, SINGLE_WILDCARD, splitTopic, validatePattern } from '../pubsub/topic.js';
import { ForbiddenError } from './errors.js';

export type Action = 'pub' | 'sub' | 'serve' | 'call';
export const ACTIONS: readonly Action[] = ['pub', 'sub', 'serve', 'call'];

/** The JSON form carried in a credential. */
export interface PermissionRule {
  allow?: string[];
  deny?: string[];
}
export type PermissionSpec = Partial<Record<Action, PermissionRule>> & { admin?: boolean };

/** Every action on everything: what a credential issued without permission flags grants. */
export const ALL_PERMISSIONS: PermissionSpec = {
  pub: { allow: ['#'] },
  sub: { allow: ['#'] },
  serve: { allow: ['#'] },
  call: { allow: ['#'] },
  admin: true,
};

/** Most patterns one action's allow or deny list may hold. */
export const MAX_PATTERNS_PER_LIST = 64;

interface CompiledRule {
  allow: string[][];
  deny: string[][];
}

/** Whether every topic matched by `inner` is matched by `outer` (both valid patterns). */
export function patternCovers(outer: readonly string[], inner: readonly string[]): boolean {
  for (let i = 0; i < outer.length; i++) {
    const o = outer[i];
    if (o === MULTI_WILDCARD) return true;
    const p = inner[i];
    if (p === undefined) return false;
    // A topic has at least one segment, so a leading `#` is matched by `*.#` too.
    if (p === MULTI_WILDCARD) return i === 0 && o === SINGLE_WILDCARD && outer.length === 2 && outer[1] === MULTI_WILDCARD;
    if (o !== SINGLE_WILDCARD && o !== p) return false;
  }
  return outer.length === inner.length;
}

/** Whether some topic is matched by both patterns. */
export function patternsOverlap(a: readonly string[], b: readonly string[]): boolean {
  for (let i = 0; ; i++) {
    const x = a[i];
    const y = b[i];
    if (x === MULTI_WILDCARD || y === MULTI_WILDCARD) return true;
    if (x === undefined || y === undefined) return x === y;
    if (x !== SINGLE_WILDCARD && y !== SINGLE_WILDCARD && x !== y) return false;
  }
}

function compileList(list: unknown, where: string): string[][] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new TypeError(`${where} must be a list of patterns`);
  if (list.length > MAX_PATTERNS_PER_LIST) throw new TypeError(`${where} has more than ${MAX_PATTERNS_PER_LIST} patterns`);
  return list.map((p) => {
    if (typeof p !== 'string') throw new TypeError(`${where} holds a non-string pattern`);
    return validatePattern(p);
  });
}

export class Permissions {
  readonly spec: Readonly<PermissionSpec>;
  readonly admin: boolean;
  readonly #rules: Record<Action, CompiledRule>;

  private constructor(spec: PermissionSpec, rules: Record<Action, CompiledRule>) {
    this.spec = spec;
    this.admin = spec.admin === true;
    this.#rules = rules;
  }

  /** @throws TypeError or InvalidTopicError when the spec is malformed */
  static fromSpec(spec: PermissionSpec): Permissions {
    if (typeof spec !== 'object' || spec === null) throw new TypeError('permissions must be an object');
    const rules = {} as Record<Action, CompiledRule>;
    for (const action of ACTIONS) {
      const rule = spec[action];
      if (rule !== undefined && (typeof rule !== 'object' || rule === null)) throw new TypeError(`permission "${action}" must be an object`);
      rules[action] = { allow: compileList(rule?.allow, `${action}.allow`), deny: compileList(rule?.deny, `${action}.deny`) };
    }
    if (spec.admin !== undefined && typeof spec.admin !== 'boolean') throw new TypeError('permission "admin" must be true or false');
    return new Permissions(spec, rules);
  }

  /**
   * Whether `action` on a topic or procedure name (pub, call, serve) or on a
   * pattern (sub) is permitted. A concrete name has no wildcards, so "an
   * allow pattern covers it" is the same as "matches it".
   */
  allows(action: Action, subject: string): boolean {
    const rule = this.#rules[action];
    const segments = splitTopic(subject);
    return rule.allow.some((a) => patternCovers(a, segments)) && !rule.deny.some((d) => patternCovers(d, segments));
  }

  /** Throws ForbiddenError naming the permission when `allows` is false. */
  check(action: Action, subject: string): void {
    if (!this.allows(action, subject)) throw new ForbiddenError(action, subject);
  }

  /** Whether a subscription under these permissions may receive a message on `topic` (the sub deny list). */
  deliverable(topic: string): boolean {
    const deny = this.#rules.sub.deny;
    if (deny.length === 0) return true;
    const segments = splitTopic(topic);
    return !deny.some((d) => patternCovers(d, segments));
  }

  /** True when every allow pattern of `other` is covered by one of ours, per action: we may delegate it. */
  grants(other: Permissions): boolean {
    if (other.admin && !this.admin) return false;
    for (const action of ACTIONS) {
      const mine = this.#rules[action].allow;
      for (const a of other.#rules[action].allow) if (!mine.some((m) => patternCovers(m, a))) return false;
    }
    return true;
  }

  /** These permissions further bounded by the issuer's deny lists: what a delegated credential really grants. */
  within(issuer: Permissions): Permissions {
    const rules = {} as Record<Action, CompiledRule>;
    for (const action of ACTIONS) {
      rules[action] = { allow: this.#rules[action].allow, deny: [...this.#rules[action].deny, ...issuer.#rules[action].deny] };
    }
    return new Permissions({ ...this.spec, admin: this.admin && issuer.admin }, rules);
  }
}
