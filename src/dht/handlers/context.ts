import type { Contact } from '../contact.js';
import type { DhtMessage } from '../messages.js';
import type { RecordStore, StoreOrigin } from '../record-store.js';
import type { RoutingTable } from '../routing-table.js';

/** What request handlers may read and change. */
export interface HandlerContext {
  readonly table: RoutingTable;
  readonly store: RecordStore;
  readonly k: number;
  /** Byte budget for the records of one VALUE response. */
  readonly maxValueResponseBytes: number;
}

/** Answers one request type; `msg` has passed wire validation for its type; `origin` says who sent it (role, source address). */
export type RequestHandler = (ctx: HandlerContext, msg: DhtMessage, from: Contact, origin: StoreOrigin) => DhtMessage;
