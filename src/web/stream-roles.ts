/**
 * Streams of a web session are all opened by the client, each starting with
 * one byte that names its role; the frames of the node's protocol follow.
 * The node never opens a stream itself: streams opened by the server side
 * of @fails-components/webtransport over HTTP/2 stall once more than a few
 * KiB are in flight (measured with 1.6.8), client-opened streams do not.
 */
/** The client's request stream: its HELLO and requests, the node's answers. */
export const STREAM_ROLE_CLIENT = 1;
/** The stream the node sends its own requests on (HELLO, GW_MSG, INVOKE): what the node's openStream() returns. */
export const STREAM_ROLE_NODE = 2;
/** How long the node waits for the client to open the node's stream. */
export const NODE_STREAM_WAIT_MS = 10_000;
/** The client's request stream, opened with a proof of the client's key (key-proof.ts) before its frames. */
export const STREAM_ROLE_CLIENT_PROOF = 3;
