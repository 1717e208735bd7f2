// Helpers shared by the TCP tests: a connected pair of TCP (or TLS) connection ends on
// 127.0.0.1, and a throwaway self-signed certificate for 127.0.0.1 made with openssl.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createTcpTransport, type TcpTransportOptions } from '../adapters/tcp.ts';
import { dialPair, type DialedPair } from './helpers/transport.ts';

/** A self-signed certificate valid for IP 127.0.0.1 (Node checks IP hosts against the SAN, not the CN). */
export interface TestCert {
  key: string;
  cert: string;
}

let certPromise: Promise<TestCert> | undefined;

/** Make (once per test file) a self-signed certificate for 127.0.0.1 in a temporary directory. */
export function selfSignedCert(): Promise<TestCert> {
  certPromise ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'troupe-tls-'));
    try {
      const keyFile = join(dir, 'key.pem');
      const certFile = join(dir, 'cert.pem');
      await promisify(execFile)('openssl', [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        keyFile,
        '-out',
        certFile,
      ]);
      return { key: await readFile(keyFile, 'utf8'), cert: await readFile(certFile, 'utf8') };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  return certPromise;
}

/** TLS options for a server and a client that trust the test certificate. */
export async function tlsOptions(): Promise<{
  server: TcpTransportOptions;
  client: TcpTransportOptions;
}> {
  const { key, cert } = await selfSignedCert();
  return { server: { tls: { key, cert } }, client: { tls: { ca: cert } } };
}

/** Two ends of one real socket: `a` dialed from a client transport, `b` accepted by a listening one. */
export function tcpPair(
  options: { server?: TcpTransportOptions; client?: TcpTransportOptions } = {},
): Promise<DialedPair> {
  return dialPair(
    createTcpTransport({ listen: '127.0.0.1:0', ...options.server }),
    createTcpTransport(options.client),
  );
}
