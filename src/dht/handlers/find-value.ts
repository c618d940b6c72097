import { VALUE, type FIND_VALUE, type DhtMessage } from '../messages.js';
import type { MessageOf } from '../../wire/messages.js';
import type { Contact } from '../contact.js';
import type { HandlerContext } from './context.js';
import { closestWire } from './closest-wire.js';

/**
 * FIND_VALUE → VALUE with the live records we hold under the key (bounded by
 * a byte budget so a popular key cannot produce an oversized frame) and our
 * k closest contacts, so the lookup can continue in the same round trip.
 */
export function handleFindValue(ctx: HandlerContext, msg: MessageOf<typeof FIND_VALUE>, from: Contact): DhtMessage {
  return {
    t: VALUE.type,
    records: ctx.store.getWire(msg.key, ctx.maxValueResponseBytes),
    nodes: closestWire(ctx, msg.key, from),
  };
}
