import { TroupeError } from '../core/index.ts';

/**
 * Split `host:port` (IPv6 hosts in brackets) as the TCP and WebSocket server adapters and the
 * relay take their `listen` options.
 * @throws {TroupeError} `TRANSPORT_CLOSED` when `text` is not `host:port`.
 */
export function parseHostPort(text: string): { host: string; port: number } {
  const at = text.lastIndexOf(':');
  const host = text.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  const port = Number(text.slice(at + 1));
  if (at <= 0 || !host || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TroupeError('TRANSPORT_CLOSED', `"${text}" is not host:port`);
  }
  return { host, port };
}
