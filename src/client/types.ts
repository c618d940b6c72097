/** What the light client hands to its users. */
import type { PeerAddress } from '../transport/types.js';
import type { Headers } from '../wire/headers.js';

/** A message as a client subscriber sees it. */
export interface ClientMessage {
  topic: string;
  data: unknown;
  /** Node ID (hex) of the publishing node. */
  publisher: string | undefined;
  /** The publisher's sequence number. */
  seq: number | undefined;
  /** Node ID (hex) of the light client that published it through the publishing node, if one did. */
  origin: string | undefined;
  /** The publisher's headers. */
  headers: Headers | undefined;
  /** Present when the message is a request: answers the requester. Resolves false when the node no longer knows the request (over a minute old, or past its 1000 most recent). */
  respond?: (data: unknown, options?: { headers?: Headers }) => Promise<boolean>;
}

/** One answer to a request. */
export interface ClientReply {
  data: unknown;
  headers: Headers | undefined;
  /** Node ID (hex) of the answering node. */
  responder: string;
}

export interface ClientSubscription {
  readonly sid: number;
  readonly pattern: string;
  unsubscribe(): Promise<void>;
}

export type { ServeContext, ServeHandler } from '../gateway/client-serve.js';

export interface ServedProcedure {
  readonly procedure: string;
  unserve(): Promise<void>;
}

/** A provider as the gateway reports it (`expires` null for the node's own registrations). */
export interface ClientProvider {
  nodeId: string;
  address: PeerAddress;
  metadata: Record<string, unknown>;
  expires: number | null;
  local: boolean;
}

export interface AttachInfo {
  nodeId: string;
  realm: string;
  /**
   * `publishWindow`: one-way publishes the node lets this client have
   * unacknowledged, `publishWindowBytes` bytes of them (both absent from
   * older nodes).
   */
  limits: { subscriptions: number; calls: number; served: number; publishWindow?: number; publishWindowBytes?: number };
}
