/**
 * The web gateway's TLS certificate: a self-signed ECDSA P-256 certificate
 * made at start, valid for at most 14 days (the longest validity the
 * WebTransport `serverCertificateHashes` option accepts), and replaced
 * before it expires; or the certificate and key files the operator gives.
 *
 * Keys and certificates come from node's WebCrypto and @peculiar/x509;
 * nothing here implements cryptography itself.
 */
import { createHash, webcrypto, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as x509 from '@peculiar/x509';
import { ConfigError } from '../util/errors.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** Validity of a generated certificate: 13 days, inside the 14 browsers accept for pinned hashes. */
export const GENERATED_CERT_VALIDITY_MS = 13 * 24 * 3600_000;
/** A generated certificate is replaced once this much of its validity is left. */
export const ROTATE_BEFORE_EXPIRY_MS = 2 * 24 * 3600_000;

export interface WebCertificate {
  /** PEM certificate and PKCS#8 key. */
  cert: string;
  key: string;
  /** SHA-256 of the certificate's DER bytes (hex): what `serverCertificateHashes` pins. */
  sha256: string;
  notAfter: Date;
  /** True for a certificate made here (rotated before expiry), false for the operator's files. */
  generated: boolean;
}

/** Makes a self-signed ECDSA P-256 certificate for `hosts` (IP addresses and names). */
export async function generateCertificate(hosts: readonly string[], validityMs = GENERATED_CERT_VALIDITY_MS, now = new Date()): Promise<WebCertificate> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const names = [...new Set(['localhost', '127.0.0.1', '::1', ...hosts])].filter((h) => h !== '0.0.0.0' && h !== '::');
  const notBefore = new Date(now.getTime() - 60_000); // clock skew between this host and the browser's
  const notAfter = new Date(now.getTime() + validityMs);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex').replace(/^[89a-f]/, '1'),
    name: 'CN=macula web gateway',
    notBefore,
    notAfter,
    signingAlgorithm: alg,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((h) => (/^[\d.]+$|:/.test(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h }))),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const key = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(pkcs8).toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`;
  return { cert: cert.toString('pem'), key, sha256: hashOf(Buffer.from(cert.rawData)), notAfter, generated: true };
}

/** Reads the operator's certificate and key (PEM). @throws ConfigError naming the file that is missing or unreadable */
export async function readCertificate(certFile: string, keyFile: string): Promise<WebCertificate> {
  const read = async (file: string, what: string): Promise<string> => {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read the web ${what} ${file}: ${(err as Error).message}; check --web-cert and --web-key`);
    }
  };
  const [cert, key] = await Promise.all([read(certFile, 'certificate'), read(keyFile, 'key')]);
  let parsed: X509Certificate;
  try {
    parsed = new X509Certificate(cert);
  } catch (err) {
    throw new ConfigError(`${certFile} holds no PEM certificate (${(err as Error).message}); pass a PEM file to --web-cert`);
  }
  return { cert, key, sha256: hashOf(parsed.raw), notAfter: new Date(parsed.validTo), generated: false };
}

function hashOf(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}
