/** Node-side clients of a web gateway: the package's own WebTransport class over HTTP/2, pinned to the node's certificate. */
import { MaculaWebClient, type WebClientInit } from '../../src/web/client/client.js';
import type { WebTransportLike } from '../../src/web/connection.js';
import { loadWebTransport } from '../../src/web/package.js';
import { WEB_FLOW_CONTROL_WINDOW, WEB_SESSION_FLOW_CONTROL_WINDOW } from '../../src/web/server.js';

/** WebTransport options for Node: HTTP/2 (no HTTP/3 here), the node's certificate pinned, flow-control windows raised. */
export function nodeTransportOptions(sha256: string): Record<string, unknown> {
  return {
    forceReliable: true,
    serverCertificateHashes: [{ algorithm: 'sha-256', value: Buffer.from(sha256, 'hex') }],
    initialStreamFlowControlWindow: WEB_FLOW_CONTROL_WINDOW,
    initialSessionFlowControlWindow: WEB_SESSION_FLOW_CONTROL_WINDOW,
    sessionFlowControlWindowSizeLimit: WEB_SESSION_FLOW_CONTROL_WINDOW,
  };
}

/** A MaculaWebClient connected from Node. */
export async function connectWeb(url: string, sha256: string, init: Partial<WebClientInit> = {}): Promise<MaculaWebClient> {
  const { module } = await loadWebTransport();
  return MaculaWebClient.connect({ url, WebTransport: module.WebTransport as never, transportOptions: nodeTransportOptions(sha256), ...init });
}

/** A bare WebTransport session to the node's session path: for tests that send what no client library would. */
export async function rawSession(url: string, sha256: string): Promise<WebTransportLike> {
  const { module } = await loadWebTransport();
  const session = new module.WebTransport(`${url.replace(/\/$/, '')}/macula`, nodeTransportOptions(sha256) as never) as unknown as WebTransportLike;
  await session.ready;
  return session;
}
