import { StoreRefusedError } from '../errors.js';
import { STORE_RESULT, type DhtMessage, type STORE } from '../messages.js';
import type { MessageOf } from '../../wire/messages.js';
import { fromWireRecord } from '../record.js';
import type { HandlerContext } from './context.js';
import type { StoreOrigin } from '../record-store.js';

/**
 * STORE → STORE_RESULT. A refusal is an answer, not an error: the publisher
 * learns the reason (`code`) and the connection stays healthy. A STORE from a
 * light client is refused (`not_a_node`) by the store, which counts it.
 */
export function handleStore(ctx: HandlerContext, msg: MessageOf<typeof STORE>, origin: StoreOrigin): DhtMessage {
  const record = fromWireRecord(msg.record);
  if (!record) return { t: STORE_RESULT.type, ok: false, code: 'bad_signature' };
  try {
    ctx.store.put(record, origin);
    return { t: STORE_RESULT.type, ok: true };
  } catch (err) {
    if (err instanceof StoreRefusedError) return { t: STORE_RESULT.type, ok: false, code: err.reason };
    throw err;
  }
}
