import type { Contact } from '../contact.js';
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

/**
 * Who sent a DHT request: its contact (ID from the verified connection,
 * port from its HELLO; 0 for a light client) and its origin (HELLO role and
 * the verified connection's address, which the record store's rules read).
 */
export interface DhtPeer {
  readonly contact: Contact;
  readonly origin: StoreOrigin;
}
