/** Client side of STORE: send one record to one peer and classify the answer. */
import type { Contact } from './contact.js';
import { STORE_REFUSAL_REASONS, type StoreRefusalReason } from './errors.js';
import { STORE, STORE_RESULT, type DhtMessage } from './messages.js';
import { toWireRecord, type DhtRecord } from './record.js';

export type StoreAttempt = 'ok' | StoreRefusalReason | 'failed';

export async function storeAt(
  request: (to: Contact, msg: DhtMessage, timeoutMs: number) => Promise<DhtMessage>,
  contact: Contact,
  record: DhtRecord,
  timeoutMs: number,
): Promise<StoreAttempt> {
  try {
    const res = await request(contact, { t: STORE.type, record: toWireRecord(record) }, timeoutMs);
    if (res.t !== STORE_RESULT.type) return 'failed';
    if (res.ok === true) return 'ok';
    const code = res.code as StoreRefusalReason;
    return STORE_REFUSAL_REASONS.includes(code) ? code : 'failed';
  } catch {
    return 'failed';
  }
}
