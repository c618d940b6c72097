import { FIND_NODE, FIND_VALUE, PING, STORE } from '../messages.js';
import type { RequestHandler } from './context.js';
import { handleFindNode } from './find-node.js';
import { handleFindValue } from './find-value.js';
import { handlePing } from './ping.js';
import { handleStore } from './store.js';

export type { HandlerContext, RequestHandler } from './context.js';

/** Request type → handler. */
export const handlers: ReadonlyMap<number, RequestHandler> = new Map<number, RequestHandler>([
  [PING.type, handlePing],
  [FIND_NODE.type, handleFindNode],
  [FIND_VALUE.type, handleFindValue],
  [STORE.type, handleStore],
]);
