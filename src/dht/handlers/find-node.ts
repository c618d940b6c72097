import { NODES, type DhtMessage } from '../messages.js';
import type { Contact } from '../contact.js';
import type { HandlerContext } from './context.js';
import { closestWire } from './closest-wire.js';

/** FIND_NODE → NODES with our k closest contacts to the target. */
export function handleFindNode(ctx: HandlerContext, msg: DhtMessage, from: Contact): DhtMessage {
  return { t: NODES.type, nodes: closestWire(ctx, msg.target as Uint8Array, from) };
}
