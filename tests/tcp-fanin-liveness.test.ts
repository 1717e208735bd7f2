// Fan-in liveness (issue 13): three sender processes flood one receiving node over TCP with
// messages that are slow to decode. The receiver spends long stretches reading (Node reads a busy
// socket many times per turn, and each frame's messages are decoded as they arrive); no link may
// be taken for dead meanwhile, on either side: the receiver hears the senders' traffic, and the
// senders, idle while they wait for credit, must keep hearing the receiver's acks and heartbeats.
// The heartbeat is shorter than the default so that a stretch of reading one socket longer than
// the timeout would show as a lost link.
import { describe, expect, it } from 'vitest';
import { behaviour } from '../core/index.ts';
import { eventually, useCluster } from './helpers/cluster.ts';

const SECRET = 'fanin-secret';
const N = 20_000;
// The heartbeat of every node here: 100 ms, timeout 1 s by default. FANIN_HEARTBEAT=50,300
// tightens it for investigation: on this machine (load ~6, N 30 000) the test lost links in 3 of 3
// runs without the TCP read budget (the senders timing the receiver out: "closed by peer" on
// the receiver, as in the bench's stall), in 2 of 3 with it, and in 1 of 5 once a heartbeat tick
// no longer took the previous tick's heartbeat for traffic (core/link.ts).
const [INTERVAL, TIMEOUT] = (process.env.FANIN_HEARTBEAT ?? '100,1000').split(',').map(Number);

describe('fan-in over TCP', () => {
  const cluster = useCluster();

  it('a receiver busy reading a flood from three processes keeps all three links', async () => {
    const node = await cluster.node({
      secret: SECRET,
      heartbeatInterval: INTERVAL,
      heartbeatTimeout: TIMEOUT,
    });
    const downs: string[] = [];
    node.events.on('linkDown', (e) => downs.push(`${e.node}: ${e.reason}`));
    // Messages the receiver refused (a full mailbox), by reason.
    const refused: string[] = [];
    node.events.on('deadLetter', (e) => refused.push(e.reason));
    let got = 0;
    node.spawn(behaviour({ handle: () => void got++ }), { name: 'sink' });
    const [address] = node.addresses;
    const senders = await Promise.all(
      [1, 2, 3].map((i) =>
        cluster.script(`sender${i}`, 'tests/fixtures/fanin-sender.ts', [
          SECRET,
          address,
          String(INTERVAL),
          String(TIMEOUT),
          String(N),
        ]),
      ),
    );
    await Promise.all(senders.map((s) => s.waitForLine(/^ready$/, 'ready', 60_000)));
    await eventually(() => got === 3, 'the warm-up messages', 30_000);
    for (const s of senders) s.proc.stdin!.write('go\n');
    // Every message arrives, or was refused as a dead letter: at its sender (`overflow`, the
    // documented rule for a fire-and-forget send past `maxLinkQueue`) or here (a full mailbox);
    // both only under heavy load.
    const dropped = () => {
      const lines = senders.map((s) => s.matching(/^sent \d+ dropped \d+/)[0]);
      return lines.every((l) => l !== undefined)
        ? lines.reduce((sum, l) => sum + Number(/dropped (\d+)/.exec(l!)![1]), 0)
        : undefined;
    };
    await eventually(
      () => {
        const d = dropped();
        return (d !== undefined && got + d + refused.length === 3 + 3 * N) || downs.length > 0;
      },
      'every message accounted for, or a lost link',
      120_000,
    );
    console.log(
      `[fan-in] ${got} of ${3 * N + 3} arrived; refused: ${dropped()} at the senders, ${refused.length} here (${[...new Set(refused)].join(', ') || 'none'})`,
    );
    const senderDowns = senders.flatMap((s) =>
      s.matching(/^linkDown/).map((l) => `${s.name} ${l}`),
    );
    expect({ downs, senderDowns }).toEqual({ downs: [], senderDowns: [] });
    expect(got + (dropped() ?? 0) + refused.length).toBe(3 + 3 * N);
  }, 180_000);
});
