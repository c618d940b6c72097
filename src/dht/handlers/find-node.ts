import { NODES, type FIND_NODE, type DhtMessage } from '../messages.js';
import type { MessageOf } from '../../wire/messages.js';
import type { Contact } from '../contact.js';
import type { HandlerContext } from './context.js';
import { closestWire } from './closest-wire.js';

/** FIND_NODE → NODES with our k closest contacts to the target. */
export function handleFindNode(ctx: HandlerContext, msg: MessageOf<typeof FIND_NODE>, from: Contact): DhtMessage {
  return { t: NODES.type, nodes: closestWire(ctx, msg.target, from) };
}
