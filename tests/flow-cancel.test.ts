// Issue 14 — cancellation: call, receive and stream take an AbortSignal; an abort rejects with
// ABORTED, frees the pending state, and tells the other side (a `ca` envelope) so the callee
// drops the call, sees ctx.signal abort, and a deferred reply is dropped.
import { describe, expect, it } from 'vitest';
import { behaviour, TroupeError, type ActorRef, type DeadLetterReason } from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';
import { rejects, settle, until, useNodes } from './helpers/nodes.ts';

/** A behaviour that defers every call and records what its signal did. */
function deferring(seen: {
  aborted: number;
  replies: ((v: unknown) => boolean)[];
  handled: number;
}) {
  return behaviour({
    handle: (_m: unknown, _s: undefined, ctx) => {
      seen.handled++;
      const signal = ctx.signal!;
      signal.addEventListener('abort', () => seen.aborted++);
      seen.replies.push(ctx.deferReply());
    },
  });
}

describe('call(msg, { signal })', () => {
  const node = useNodes();

  it('a remote call aborted: ABORTED at once, the callee sees ctx.signal abort, its later reply is dropped (no late-reply at the caller)', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    await connectMemory(a, b);
    const seen = { aborted: 0, replies: [] as ((v: unknown) => boolean)[], handled: 0 };
    const slow = b.spawn(deferring(seen));
    const dead: DeadLetterReason[] = [];
    a.events.on('deadLetter', (e) => dead.push(e.reason));
    const ac = new AbortController();
    const p = a.ref(slow.node, slow.id).call('work', { signal: ac.signal, timeout: 60_000 });
    await until(() => seen.handled === 1, 'the callee took the call');
    ac.abort('user gave up');
    const err = await rejects(p, 'ABORTED', 'the aborted call');
    expect(err.cause).toBe('user gave up');
    await until(() => seen.aborted === 1, 'the callee saw its signal abort');
    // The deferred reply is refused on the callee's side: it never crosses the wire.
    expect(seen.replies[0]('too late')).toBe(false);
    await settle();
    expect(dead).not.toContain('late-reply');
  });

  it('a call aborted while it still waits in the mailbox is dropped: the handler never runs', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    await connectMemory(a, b);
    const seen = { aborted: 0, replies: [] as ((v: unknown) => boolean)[], handled: 0 };
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const busy = b.spawn(
      behaviour({
        handle: async (m: string, _s: undefined, ctx) => {
          seen.handled++;
          if (m === 'block') await gate;
          ctx.reply(m);
        },
      }),
    );
    const target = a.ref<string>(busy.node, busy.id);
    const first = target.call('block', { timeout: 60_000 });
    await until(() => seen.handled === 1, 'the first call is being handled');
    const ac = new AbortController();
    const second = target.call('second', { signal: ac.signal, timeout: 60_000 });
    await settle();
    ac.abort();
    await rejects(second, 'ABORTED');
    await settle();
    release();
    expect(await first).toBe('block');
    await settle();
    expect(seen.handled).toBe(1);
  });

  it('a local call aborted: ABORTED, and the callee signal aborts', async () => {
    const a = node({ name: 'a' });
    const seen = { aborted: 0, replies: [] as ((v: unknown) => boolean)[], handled: 0 };
    const slow = a.spawn(deferring(seen));
    const ac = new AbortController();
    const p = slow.call('x', { signal: ac.signal });
    await until(() => seen.handled === 1, 'handled');
    ac.abort();
    await rejects(p, 'ABORTED');
    expect(seen.aborted).toBe(1);
  });

  it('an already aborted signal rejects at once without sending', async () => {
    const a = node({ name: 'a' });
    const seen = { aborted: 0, replies: [] as ((v: unknown) => boolean)[], handled: 0 };
    const slow = a.spawn(deferring(seen));
    await rejects(slow.call('x', { signal: AbortSignal.abort() }), 'ABORTED');
    await settle();
    expect(seen.handled).toBe(0);
  });

  it('a call answered before the abort resolves; aborting later changes nothing', async () => {
    const a = node({ name: 'a' });
    const echo = a.spawn(async (self) => {
      for (;;) self.reply(await self.receive());
    });
    const ac = new AbortController();
    expect(await echo.call('hi', { signal: ac.signal })).toBe('hi');
    ac.abort();
    expect(await echo.call('again', { signal: new AbortController().signal })).toBe('again');
  });
});

describe('receive(matcher, { signal })', () => {
  const node = useNodes();

  it('rejects ABORTED and leaves the mailbox as it was; the actor can receive again', async () => {
    const a = node({ name: 'a' });
    const results: unknown[] = [];
    const ac = new AbortController();
    const ref: ActorRef<string> = a.spawn(async (self) => {
      try {
        await self.receive((m) => m === 'never', { signal: ac.signal });
      } catch (err) {
        results.push((err as TroupeError).code);
      }
      results.push(await self.receive());
    });
    ref.send('kept');
    await settle();
    ac.abort();
    await until(() => results.length === 2, 'the receive ended');
    expect(results).toEqual(['ABORTED', 'kept']);
  });
});
