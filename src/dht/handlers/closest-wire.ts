import { bytesEqual } from '../id.js';
import type { Contact, WireContact } from '../contact.js';
import type { HandlerContext } from './context.js';

/**
 * The k contacts closest to `target`, in wire form, without the requester
 * (it knows itself; naming it would waste a slot of its shortlist).
 */
export function closestWire(ctx: HandlerContext, target: Uint8Array, from: Contact): WireContact[] {
  const contacts = ctx.table.closest(target, ctx.k + 1);
  const out: WireContact[] = [];
  for (const c of contacts) {
    if (out.length >= ctx.k) break;
    if (!bytesEqual(c.id, from.id)) out.push(c.wire);
  }
  return out;
}
