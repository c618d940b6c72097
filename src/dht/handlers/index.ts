import { FIND_NODE, FIND_VALUE, STORE, type DhtMessage } from '../messages.js';
import type { HandlerRegistry } from '../../wire/messages.js';
import type { DhtPeer, HandlerContext } from './context.js';
import { handleFindNode } from './find-node.js';
import { handleFindValue } from './find-value.js';
import { handleStore } from './store.js';

export type { DhtPeer, HandlerContext } from './context.js';

/** Where the DHT's handlers are registered: the node's messenger (through the session's DHT adapter), or an in-process test network. */
export type DhtHandlerRegistry = HandlerRegistry<DhtPeer, DhtMessage>;

/**
 * Registers the handler of each DHT request type, each directly: the
 * registry's dispatch is the only one. `received` counts each request by
 * type name before it is answered. PING is the node's, not the DHT's.
 */
export function registerHandlers(registry: DhtHandlerRegistry, ctx: HandlerContext, received: (name: string) => void): void {
  registry.handle(FIND_NODE, (msg, peer) => {
    received(FIND_NODE.name);
    return handleFindNode(ctx, msg, peer.contact);
  });
  registry.handle(FIND_VALUE, (msg, peer) => {
    received(FIND_VALUE.name);
    return handleFindValue(ctx, msg, peer.contact);
  });
  registry.handle(STORE, (msg, peer) => {
    received(STORE.name);
    return handleStore(ctx, msg, peer.origin);
  });
}
