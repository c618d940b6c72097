/**
 * Queue groups: subscriptions that share the messages of their pattern. A
 * message is delivered to every plain subscription and to exactly one member
 * of each queue group across the mesh (see pubsub.ts for the selection).
 */
import { MaculaError } from '../util/errors.js';

/** Longest queue group name, in characters. */
export const MAX_QUEUE_GROUP_CHARS = 64;
const QUEUE_GROUP = /^[A-Za-z0-9_.:-]{1,64}$/;

/** A queue group name that is not 1..64 of `A-Z a-z 0-9 _ . : -`. */
export class InvalidQueueGroupError extends MaculaError {
  constructor(group: unknown) {
    super('MACULA_ERR_INVALID_QUEUE', `invalid queue group ${JSON.stringify(String(group)).slice(0, 80)}: use 1..${MAX_QUEUE_GROUP_CHARS} characters of A-Z a-z 0-9 _ . : -`);
  }
}

export function isQueueGroup(group: unknown): group is string {
  return typeof group === 'string' && QUEUE_GROUP.test(group);
}

/** @throws InvalidQueueGroupError */
export function validateQueueGroup(group: unknown): string {
  if (!isQueueGroup(group)) throw new InvalidQueueGroupError(group);
  return group;
}
