// troupe/yjs in Node: the document actor and participants over memory links and real TCP.
// Concurrent edits converge, presence goes with a participant's DOWN, read-only updates are
// refused with an event, offline edits merge on return, a file store brings a document back
// after the process that held it died without closing anything, and size limits hold.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as pathJoin } from 'node:path';
import * as Y from 'yjs';
import { Awareness, encodeAwarenessUpdate } from 'y-protocols/awareness';
import { afterEach, describe, expect, it } from 'vitest';
import type { Node } from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import {
  joinDocument,
  serveDocuments,
  type DocumentServer,
  type YjsProvider,
} from '../collab/index.ts';
import { createFileStore } from '../collab/file-store.ts';
import { until, useNodes, within } from './helpers/nodes.ts';

const FAST = { heartbeatInterval: 100, heartbeatTimeout: 600 };

describe('troupe/yjs over memory links', () => {
  const makeNode = useNodes();
  const servers: DocumentServer[] = [];
  const providers: YjsProvider[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const p of providers.splice(0)) p.destroy();
    await Promise.all(servers.splice(0).map((s) => s.close().catch(() => {})));
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  /** A server node and `n` participant nodes, each linked to the server and to each other. */
  async function cluster(n: number, options: Parameters<typeof serveDocuments>[1] = {}) {
    const s = makeNode({ name: 'server', secret: 'c', ...FAST });
    const server = await serveDocuments(s, options);
    servers.push(server);
    const parts: Node[] = [];
    for (let i = 0; i < n; i++) {
      const p = makeNode({ name: `p${i}`, secret: 'c', ...FAST });
      await connectMemory(p, s);
      for (const q of parts) await connectMemory(p, q);
      parts.push(p);
    }
    await until(
      () => parts.every((p) => p.whereis('yjs') !== undefined),
      'every participant knows the document actor',
    );
    return { s, server, parts };
  }

  function join(node: Node, user: string, extra: Partial<Parameters<typeof joinDocument>[1]> = {}) {
    const p = joinDocument(node, { name: 'doc', user, retryInterval: 100, ...extra });
    providers.push(p);
    return p;
  }

  it('three participants typing concurrently end with the same text as the document actor', async () => {
    const { server, parts } = await cluster(3);
    const ps = parts.map((n, i) => join(n, `u${i}`));
    await within(Promise.all(ps.map((p) => p.whenSynced())), 'all joined');
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let round = 0; round < 200; round++) {
      for (const p of ps) {
        const t = p.doc.getText('t');
        if (t.length > 0 && rnd() < 0.3) t.delete(Math.floor(rnd() * t.length), 1);
        else
          t.insert(
            Math.floor(rnd() * (t.length + 1)),
            String.fromCharCode(97 + Math.floor(rnd() * 26)),
          );
      }
      if (round % 20 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    const sdoc = await server.doc('doc');
    await until(
      () => ps.every((p) => p.doc.getText('t').toString() === sdoc.getText('t').toString()),
      'all converge',
      10_000,
    );
    expect(sdoc.getText('t').length).toBeGreaterThan(100);
  });

  it('a participant lost (its node shut down) loses its presence at the others within failure detection', async () => {
    const { parts } = await cluster(2);
    const [a, b] = [join(parts[0], 'ada'), join(parts[1], 'bob')];
    await within(Promise.all([a.whenSynced(), b.whenSynced()]), 'joined');
    b.awareness.setLocalStateField('user', { name: 'bob', color: '#f00' });
    await until(() => a.awareness.getStates().get(b.doc.clientID) !== undefined, 'a sees bob');
    const t0 = Date.now();
    await parts[1].shutdown();
    await until(() => !a.awareness.getStates().has(b.doc.clientID), 'bob gone at a', 5000);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(a.peers.map((p) => p.user)).toEqual([]);
  });

  it('a read-only participant gets the document, and its updates are refused with an event', async () => {
    const { server, parts } = await cluster(2, {
      authorize: ({ user }) => (user === 'reader' ? 'read' : 'write'),
    });
    const w = join(parts[0], 'writer');
    const r = join(parts[1], 'reader');
    await within(Promise.all([w.whenSynced(), r.whenSynced()]), 'joined');
    expect(r.role).toBe('read');
    w.doc.getText('t').insert(0, 'from the writer');
    await until(
      () => r.doc.getText('t').toString() === 'from the writer',
      'the reader sees the writer',
    );
    const refused = server.events.next('refused');
    const told = r.events.next('refused');
    r.doc.getText('t').insert(0, 'vandal ');
    expect((await within(refused, 'server refused event')).reason).toBe('read-only participant');
    expect((await within(told, 'reader told')).reason).toBe('read-only participant');
    await new Promise((res) => setTimeout(res, 100));
    expect((await server.doc('doc')).getText('t').toString()).toBe('from the writer');
    expect(w.doc.getText('t').toString()).toBe('from the writer'); // the direct copy was dropped too
  });

  it("a read-only participant forging updates (a writer's ref, a guessed key, straight to a peer) is refused and changes nothing", async () => {
    const { server, parts } = await cluster(2, {
      authorize: ({ user }) => (user === 'reader' ? 'read' : 'write'),
    });
    const w = join(parts[0], 'writer');
    const r = join(parts[1], 'reader');
    await within(Promise.all([w.whenSynced(), r.whenSynced()]), 'joined');
    w.doc.getText('t').insert(0, 'genuine');
    await until(() => r.doc.getText('t').toString() === 'genuine', 'the reader sees the writer');
    // A forged edit, made as a real Yjs update.
    const forged = new Y.Doc();
    Y.applyUpdate(forged, Y.encodeStateAsUpdate(r.doc));
    forged.getText('t').insert(0, 'forged ');
    const update = Y.encodeStateAsUpdate(forged, Y.encodeStateVector(r.doc));
    const actor = parts[1].whereis('yjs')!;
    // 1. The old trick: name the writer's ref as `from`, with a made-up session key.
    const refused = server.events.next('refused');
    actor.send({ t: 'update', doc: 'doc', from: w.ref, session: '0'.repeat(32), update });
    const ev = await within(refused, 'refused event');
    expect(ev.reason).toBe('unknown session');
    expect(ev.user).toBeUndefined();
    // 2. Without any key it does not even pass the schema.
    const invalid = server.events.next('invalid');
    actor.send({ t: 'update', doc: 'doc', from: w.ref, update });
    await within(invalid, 'invalid event');
    // 3. Straight to the writer's participant actor, as the actor would send it (no key, a guessed key).
    w.ref.send({ t: 'update', doc: 'doc', update });
    w.ref.send({ t: 'update', doc: 'doc', session: 'f'.repeat(32), update });
    // 4. Its own edits, as before, are refused as read-only.
    const readOnly = server.events.next('refused');
    r.doc.getText('t').insert(0, 'vandal ');
    expect((await within(readOnly, 'read-only refusal')).reason).toBe('read-only participant');
    await new Promise((res) => setTimeout(res, 200));
    expect((await server.doc('doc')).getText('t').toString()).toBe('genuine');
    expect(w.doc.getText('t').toString()).toBe('genuine');
    // The writer is unaffected.
    w.doc.getText('t').insert(7, '!');
    const held = await server.doc('doc');
    await until(() => held.getText('t').toString() === 'genuine!', 'the writer still writes');
  });

  it("a spoofed join claiming a writer's ref gets no session and no write rights", async () => {
    // Rights by node: only a participant on p0 may write.
    const { server, parts } = await cluster(2, {
      authorize: ({ node }) => (node === 'p0' ? 'write' : 'read'),
    });
    const w = join(parts[0], 'writer');
    await within(w.whenSynced(), 'writer joined');
    w.doc.getText('t').insert(0, 'genuine');
    const held = await server.doc('doc');
    await until(() => held.getText('t').toString() === 'genuine', 'the actor has it');
    const joinedEvent = server.events.next('joined');
    // p1 claims to be the writer's participant (on p0): authorize says 'write' for that claim...
    const answer = (await parts[1].call('yjs', {
      t: 'join',
      doc: 'doc',
      from: w.ref,
      user: 'mallory',
      client: 4242,
      sv: Y.encodeStateVector(new Y.Doc()),
      nonce: 'a'.repeat(32),
    })) as Record<string, unknown>;
    // ...but the call's answer carries neither the key nor the document: they went to the claimed ref.
    expect(answer).toEqual({ t: 'joining', doc: 'doc' });
    expect((await within(joinedEvent, 'joined event')).user).toBe('mallory');
    // Whatever key p1 guesses, its updates are refused and the document stays.
    const forged = new Y.Doc();
    forged.getText('t').insert(0, 'pwned');
    const refused = server.events.next('refused');
    parts[1].whereis('yjs')!.send({
      t: 'update',
      doc: 'doc',
      from: w.ref,
      session: 'a'.repeat(32),
      update: Y.encodeStateAsUpdate(forged),
    });
    expect((await within(refused, 'refused')).reason).toBe('unknown session');
    // The real writer took no `joined` it did not ask for, and still edits under its own key.
    w.doc.getText('t').insert(7, '!');
    await until(() => held.getText('t').toString() === 'genuine!', 'the writer still writes');
    expect(held.getText('t').toString()).not.toContain('pwned');
    expect(w.status).toBe('connected');
  });

  it("a member cannot set, move or clear another member's presence, nor join under its client id", async () => {
    const { server, parts } = await cluster(2);
    const w = join(parts[0], 'writer');
    const r = join(parts[1], 'reader');
    await within(Promise.all([w.whenSynced(), r.whenSynced()]), 'joined');
    w.awareness.setLocalStateField('user', { name: 'writer' });
    await until(
      () =>
        (r.awareness.getStates().get(w.doc.clientID) as { user?: { name?: string } } | undefined)
          ?.user?.name === 'writer',
      "the reader sees the writer's presence",
    );
    // An awareness update for `client` with a clock far ahead of the genuine one.
    const forge = (client: number, state: Record<string, unknown> | null): Uint8Array => {
      const d = new Y.Doc();
      d.clientID = client;
      const aw = new Awareness(d);
      for (let i = 0; i < 50; i++) aw.setLocalState({ n: i });
      aw.setLocalState(state);
      const u = encodeAwarenessUpdate(aw, [client]);
      aw.destroy();
      d.destroy();
      return u;
    };
    const actor = parts[1].whereis('yjs')!;
    // A hostile member: a plain actor that joins honestly under its own client id 4242.
    const session = new Promise<string>((resolve) => {
      const mallory = parts[1].spawn(async (self) => {
        const joined = (await self.receive()) as { t: string; session: string };
        resolve(joined.session);
        for (;;) await self.receive();
      });
      void parts[1].call(actor, {
        t: 'join',
        doc: 'doc',
        from: mallory,
        user: 'mallory',
        client: 4242,
        sv: Y.encodeStateVector(new Y.Doc()),
        nonce: 'c'.repeat(32),
      });
    });
    const key = await within(session, 'mallory joined');
    // 1. It rewrites the writer's presence: refused, with an event.
    let refused = server.events.next('refused');
    actor.send({
      t: 'awareness',
      doc: 'doc',
      session: key,
      update: forge(w.doc.clientID, { user: { name: 'spoof' } }),
    });
    expect((await within(refused, 'refused')).reason).toBe("awareness for another member's client");
    // 2. It clears the writer's presence (a null state): refused too.
    refused = server.events.next('refused');
    actor.send({ t: 'awareness', doc: 'doc', session: key, update: forge(w.doc.clientID, null) });
    expect((await within(refused, 'refused')).reason).toBe("awareness for another member's client");
    // 3. A malformed update is refused rather than applied in part.
    refused = server.events.next('refused');
    actor.send({ t: 'awareness', doc: 'doc', session: key, update: new Uint8Array([5, 1, 2]) });
    expect((await within(refused, 'refused')).reason).toBe('malformed awareness');
    // 4. Its own presence passes.
    actor.send({
      t: 'awareness',
      doc: 'doc',
      session: key,
      update: forge(4242, { user: { name: 'mallory' } }),
    });
    await until(
      () => r.awareness.getStates().has(4242),
      "mallory's own presence reaches the reader",
    );
    // 5. A second join claiming the writer's client id is denied.
    const denied = server.events.next('denied');
    const answer = await parts[1].call(actor, {
      t: 'join',
      doc: 'doc',
      from: parts[1].spawn(async (self) => {
        await self.receive();
      }),
      user: 'mallory2',
      client: w.doc.clientID,
      sv: Y.encodeStateVector(new Y.Doc()),
      nonce: 'd'.repeat(32),
    });
    expect(answer).toEqual({ t: 'denied', doc: 'doc', reason: 'client id in use' });
    expect((await within(denied, 'denied event')).user).toBe('mallory2');
    // The writer's genuine presence is intact everywhere.
    await new Promise((res) => setTimeout(res, 200));
    for (const p of [r, w])
      expect(
        (p.awareness.getStates().get(w.doc.clientID) as { user?: { name?: string } }).user?.name,
      ).toBe('writer');
  });

  it('a denied join is told; an update too large is refused as invalid', async () => {
    const { server, parts } = await cluster(1, {
      authorize: ({ user }) => (user === 'eve' ? false : 'write'),
      maxUpdateBytes: 1000,
    });
    const eve = join(parts[0], 'eve');
    expect((await within(eve.events.next('denied'), 'denied')).reason).toBe('not authorized');
    const ok = join(parts[0], 'ok', { name: 'doc' });
    await ok.whenSynced();
    const invalid = server.events.next('invalid');
    ok.doc.getText('t').insert(0, 'x'.repeat(5000));
    expect((await within(invalid, 'invalid')).error).toMatch(/1000 bytes/);
  });

  it('offline edits on both sides merge on return', async () => {
    const { server, parts } = await cluster(2);
    const [a, b] = [join(parts[0], 'a'), join(parts[1], 'b')];
    await within(Promise.all([a.whenSynced(), b.whenSynced()]), 'joined');
    a.doc.getText('t').insert(0, 'shared. ');
    await until(() => b.doc.getText('t').toString() === 'shared. ', 'b has it');
    a.disconnect();
    expect(a.status).toBe('offline');
    a.doc.getText('t').insert(8, 'offline A. ');
    b.doc.getText('t').insert(8, 'online B. ');
    await new Promise((r) => setTimeout(r, 50));
    expect(b.doc.getText('t').toString()).toBe('shared. online B. ');
    a.connect();
    await within(a.whenSynced(), 'a rejoins');
    const sdoc = await server.doc('doc');
    await until(
      () => [a, b].every((p) => p.doc.getText('t').toString() === sdoc.getText('t').toString()),
      'merged',
    );
    expect(sdoc.getText('t').toString()).toMatch(/offline A\. /);
    expect(sdoc.getText('t').toString()).toMatch(/online B\. /);
  });

  it('a file store brings the document back after the holder died without closing; participants rejoin', async () => {
    const dir = mkdtempSync(pathJoin(tmpdir(), 'troupe-yjs-'));
    dirs.push(dir);
    const s1 = makeNode({ name: 'holder', secret: 'c', ...FAST });
    await serveDocuments(s1, { store: createFileStore(dir), compactEvery: 5 });
    const p = makeNode({ name: 'part', secret: 'c', ...FAST });
    await connectMemory(p, s1);
    await until(() => p.whereis('yjs') !== undefined, 'name known');
    const a = join(p, 'a');
    await a.whenSynced();
    for (let i = 0; i < 12; i++) a.doc.getText('t').insert(i, String(i % 10));
    await new Promise((r) => setTimeout(r, 200));
    // Die without close(): no final compaction, the log holds the updates after the last snapshot.
    await s1.shutdown();
    await until(() => a.status !== 'connected', 'a sees the holder go');
    a.doc.getText('t').insert(0, '>'); // typed while the holder is down
    const s2 = makeNode({ name: 'holder', secret: 'c', ...FAST });
    const server2 = await serveDocuments(s2, { store: createFileStore(dir) });
    servers.push(server2);
    expect((await server2.doc('doc')).getText('t').toString()).toBe('012345678901');
    await connectMemory(p, s2);
    await within(a.whenSynced(), 'a rejoins', 5000);
    await until(() => server2.participants('doc').length === 1, 'a is a participant');
    await until(() => a.doc.getText('t').toString() === '>012345678901', 'a keeps its text');
    const sdoc = await server2.doc('doc');
    await until(
      () => sdoc.getText('t').toString() === '>012345678901',
      'the holder has the edit made while it was down',
    );
  });
});

describe('troupe/yjs over TCP', () => {
  const makeNode = useNodes();
  it('joins a document of ~1 MB of updates and follows edits, over real sockets', async () => {
    const s = makeNode({
      name: 'tcp-server',
      secret: 'c',
      transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
    });
    const server = await serveDocuments(s);
    try {
      const [address] = await s.listen();
      const sdoc = await server.doc('big');
      // ~1 MB of updates: many small inserts.
      const text = sdoc.getText('t');
      const chunk = 'lorem ipsum dolor sit amet '.repeat(40);
      while (Y.encodeStateAsUpdate(sdoc).byteLength < 1_000_000) text.insert(text.length, chunk);
      const a = makeNode({ name: 'tcp-a', secret: 'c', transports: [createTcpTransport()] });
      await a.connect(address);
      await until(() => a.whereis('yjs') !== undefined, 'name known');
      const t0 = performance.now();
      const p = joinDocument(a, { name: 'big', user: 'a' });
      await within(p.whenSynced(), 'joined the big document', 20_000);
      const ms = performance.now() - t0;
      console.log(
        `joined a document of ${Y.encodeStateAsUpdate(sdoc).byteLength} bytes over TCP in ${ms.toFixed(1)} ms`,
      );
      expect(p.doc.getText('t').length).toBe(text.length);
      p.doc.getText('t').insert(0, 'edit over tcp ');
      await until(
        () => text.toString().startsWith('edit over tcp '),
        'the edit reaches the server',
        5000,
      );
      p.destroy();
    } finally {
      await server.close();
    }
  }, 30_000);
});
