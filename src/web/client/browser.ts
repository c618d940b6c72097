/**
 * The browser bundle's entry (/macula-client.js): the web client with the
 * WebTransport class chosen for the node it talks to. A node with HTTP/3
 * is reached with the browser's own WebTransport, pinning the node's
 * certificate hash; every other node through the package's WebSocket
 * mapping (its ponyfill), which any browser can open.
 */
// The browser build of the package (the bundle resolves its "browser" export) has the ponyfill.
import * as webtransport from '@fails-components/webtransport';
import { MaculaWebClient, type WebClientInit, type WebTransportClass } from './client.js';

export { MaculaWebClient, PublishError } from './client.js';
export type { AttachInfo, PublishStats, WebClientIdentity, WebClientInit, WebMessage, WebServeHandler, WebSubscription } from './client.js';

/** What /info.json of a node's web port says. */
export interface NodeWebInfo {
  nodeId: string;
  realm: string;
  path: string;
  modes: { http3: boolean; http2: boolean; websocket: boolean };
  certificate: { sha256: string; notAfter: string };
}

/** The node's /info.json (node ID, realm, modes, certificate hash). */
export async function nodeInfo(url: string): Promise<NodeWebInfo> {
  const res = await fetch(`${url.replace(/\/+$/, '')}/info.json`);
  if (!res.ok) throw new Error(`${url}/info.json answered ${res.status}`);
  return (await res.json()) as NodeWebInfo;
}

/** Which WebTransport path `connect` takes to a node: 'http3' (native) or 'websocket'. */
export function pathFor(info: NodeWebInfo): 'http3' | 'websocket' {
  const native = (globalThis as { self?: { WebTransport?: unknown } }).self?.WebTransport;
  return info.modes.http3 && native !== undefined ? 'http3' : 'websocket';
}

/**
 * Connects to the node at `url` (default: the page's origin). `realm`
 * defaults to the node's own, read from /info.json with its modes.
 */
export async function connect(init: Partial<WebClientInit> = {}): Promise<MaculaWebClient> {
  const url = init.url ?? (globalThis as { location?: { origin: string } }).location?.origin;
  if (!url) throw new Error('connect() needs { url } outside a page');
  if (init.WebTransport) return MaculaWebClient.connect({ ...init, url });
  const info = await nodeInfo(url);
  const http3 = pathFor(info) === 'http3';
  const WebTransport = (http3 ? (globalThis as { self?: { WebTransport?: unknown } }).self!.WebTransport : (webtransport as unknown as { WebTransportPonyfill: WebTransportClass }).WebTransportPonyfill) as WebTransportClass;
  const hash = Uint8Array.from(info.certificate.sha256.match(/../g)!.map((b) => Number.parseInt(b, 16)));
  return MaculaWebClient.connect({
    realm: info.realm,
    ...init,
    url,
    WebTransport,
    transportOptions: http3 ? { serverCertificateHashes: [{ algorithm: 'sha-256', value: hash }], ...init.transportOptions } : { ...init.transportOptions },
  });
}
