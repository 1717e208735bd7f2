// Two TCP nodes whose only link runs through a fault proxy, for the tests that cut a link
// mid-stream and count what arrived against what the sender dead-lettered: `b` listens, `a`
// does not dial anyone on its own and does not redial a lost link (reconnectWindow 0).
import { createNode, type Node } from '../../core/index.ts';
import { createTcpTransport } from '../../adapters/tcp.ts';
import { createFaultProxy, type FaultProxy } from './fault-proxy.ts';

/** `a` and `b` (named `<prefix>-a`, `<prefix>-b`) and the proxy in front of `b`, not yet linked. */
export async function proxiedTcpPair(
  prefix: string,
  secret: string,
): Promise<{ a: Node; b: Node; proxy: FaultProxy }> {
  const b = createNode({
    name: `${prefix}-b`,
    secret,
    transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
    autoConnect: false,
  });
  const a = createNode({
    name: `${prefix}-a`,
    secret,
    transports: [createTcpTransport()],
    autoConnect: false,
    reconnectWindow: 0,
  });
  const [addr] = await b.listen();
  const proxy = await createFaultProxy(addr!.replace('tcp://', ''));
  return { a, b, proxy };
}
