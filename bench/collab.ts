/**
 * troupe/yjs figures. `collab.update_p50_ms`: an edit on page A applied on page B (half an
 * edit/echo round trip, Chromium). Edits go through the document actor on the relay, which checks
 * the sender's rights (never page to page: a page could not tell a forgery), so this is a hop
 * more than the WebRTC link between the pages; it is measured beside the raw peerjs DataConnection half
 * round trip between the same pages in the same run (tests/browser/scenarios/collab.ts `bench`, in
 * a loopback-only network namespace). `collab.join_ms`: joining a document of ~1 MB of updates
 * over TCP (Node), beside sending the same bytes as one message.
 */
import * as Y from 'yjs';
import { createNode } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { joinDocument, serveDocuments } from '../collab/index.ts';
import { median, now, type BenchCase, type Result } from './harness.ts';
import { runInNetns } from '../tests/browser/harness/netns.ts';

const update: BenchCase = {
  name: 'collab.update',
  async run(): Promise<Result[]> {
    const run = runInNetns('tests/browser/scenarios/collab.ts', ['bench', 'bench-noidb'], 600_000);
    type Figures = { webrtcLink: boolean; troupeP50: number[]; rawP50: number[]; n: number };
    const out: Result[] = [];
    try {
      for (const [name, key, what] of [
        ['bench', 'collab.update_p50_ms', 'with y-indexeddb in both pages, as in the demo'],
        ['bench-noidb', 'collab.update_noidb_p50_ms', 'without y-indexeddb: troupe/yjs alone'],
      ] as const) {
        const r = await run.result<Figures>(name);
        if (!r.ok || !r.value) throw new Error(`${r.error}\n${(r.diagnostics ?? []).join('\n')}`);
        const v = r.value;
        out.push({
          key,
          unit: 'ms',
          value: median(v.troupeP50),
          baseline: median(v.rawP50),
          baselineLabel: 'raw peerjs DataConnection half round trip',
          note: `${key}: Chromium, two pages${v.webrtcLink ? ' linked over WebRTC' : ' (NO WebRTC link)'}, edits through the document actor on the relay, ${what}; 5 interleaved rounds of ${v.n} sequential edit→echo round trips (troupe/yjs) and raw peerjs pings; p50 of halves per round, median of rounds.`,
        });
      }
    } finally {
      await run.stop();
    }
    return out;
  },
};

const join: BenchCase = {
  name: 'collab.join',
  async run(): Promise<Result[]> {
    const s = createNode({
      name: 'bench-docs',
      secret: 'b',
      transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
    });
    const server = await serveDocuments(s);
    const [address] = await s.listen();
    const sdoc = await server.doc('big');
    const text = sdoc.getText('body');
    const chunk = 'lorem ipsum dolor sit amet '.repeat(40);
    while (Y.encodeStateAsUpdate(sdoc).byteLength < 1_000_000) text.insert(text.length, chunk);
    const size = Y.encodeStateAsUpdate(sdoc).byteLength;
    const a = createNode({ name: 'bench-joiner', secret: 'b', transports: [createTcpTransport()] });
    await a.connect(address);
    while (!a.whereis('yjs')) await new Promise((r) => setTimeout(r, 10));
    const sink = s.spawn(async (self) => {
      for (;;) {
        await self.receive();
        self.reply(1);
      }
    });
    const joins: number[] = [];
    const raws: number[] = [];
    for (let i = 0; i < 7; i++) {
      const t0 = now();
      const p = joinDocument(a, { name: 'big', user: `u${i}` });
      await p.whenSynced();
      joins.push(now() - t0);
      p.destroy();
      const bytes = Y.encodeStateAsUpdate(sdoc);
      const t1 = now();
      await a.call(sink, { bytes });
      raws.push(now() - t1);
    }
    await server.close();
    await Promise.all([a.shutdown(), s.shutdown()]);
    return [
      {
        key: 'collab.join_ms',
        unit: 'ms',
        value: median(joins),
        baseline: median(raws),
        baselineLabel: `a call carrying the same ${size} bytes`,
        note: `collab.join_ms: Node, TCP loopback; join (state vector → ${size}-byte update, applied) of a document of ~1 MB of updates, median of 7.`,
      },
    ];
  },
};

export const cases: BenchCase[] = [join, update];
