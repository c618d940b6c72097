import { PONG, type DhtMessage } from '../messages.js';

/** PING → PONG. The caller's contact was already refreshed by onContact(). */
export function handlePing(): DhtMessage {
  return { t: PONG.type };
}
