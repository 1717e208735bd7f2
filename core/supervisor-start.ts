/**
 * Starting one supervised child: locally from a behaviour or process function, on a node
 * chosen by a placement from a node's behaviour table, or through a custom start function (a
 * worker, a process). The child is linked to the supervisor before this returns.
 */
import { z } from 'zod';
import type { ActorContext } from './actor-context.ts';
import { Down } from './messages.ts';
import type { ActorRef } from './actor-ref.ts';
import type { Behaviour, ProcessFn } from './behaviour.ts';
import { TroupeError } from './errors.ts';
import type { Node } from './node-api.ts';
import type { Placement, ResolvedSpec, Started } from './supervisor-spec.ts';

/** The behaviour {@link serveSupervision} defines: registers a local actor under a name. */
export const REGISTRAR = 'troupe.supervisor.register';

const registrarArgs = z.object({
  name: z.string().min(1).max(256),
  id: z.number().int().nonnegative(),
});

/**
 * Let supervisors on other nodes give the children they start on this node a registered name
 * (a name is owned by the node of its actor, so that node registers it). Call it on every node
 * that hosts named children of remote supervisors. It only names a live local actor, and only
 * under a name nobody holds.
 * @example
 * serveSupervision(node); node.define('cache', z.object({ size: z.number() }), cacheBehaviour);
 */
export function serveSupervision(node: Node): void {
  node.define(
    REGISTRAR,
    registrarArgs,
    async (self: ActorContext<unknown>, a: z.output<typeof registrarArgs>) => {
      const ref = self.node.ref(self.node.id, a.id);
      // The previous holder may be an actor of another node whose exit has not reached this node
      // yet (its unregistration is one message behind): wait a little for it, never for a live
      // local holder.
      for (let i = 0; i < 25; i++) {
        if (!self.node.isAlive(ref)) return false;
        if (self.node.register(a.name, ref)) return true;
        const holder = self.node.whereis(a.name);
        if (holder && holder.node === self.node.id) return false;
        await self.receive(() => false, { timeout: 20 }).catch(() => undefined);
      }
      return false;
    },
  );
}

/** The live members a placement chooses from: this node and every node it reaches, sorted. */
export function members(node: Node): string[] {
  return [...new Set([node.id, ...node.nodes()])].sort();
}

/**
 * The node a placement picks. `load` counts this supervisor's running children per node;
 * `avoid` is the node the child was just lost with.
 * @throws {TroupeError} `NODE_DOWN` when no live member fits.
 */
export function place(
  p: Placement | undefined,
  node: Node,
  child: { id: string; previous?: string },
  load: Map<string, number>,
  avoid?: string,
): string {
  if (p === undefined) return node.id;
  const live = members(node).filter((m) => m !== avoid);
  let pick: string | undefined;
  if (typeof p === 'function') pick = p(live, child);
  else if (p === 'spread' || typeof p === 'object') {
    const pool = p === 'spread' ? live : live.filter((m) => p.spread.includes(m));
    for (const m of pool)
      if (pick === undefined || (load.get(m) ?? 0) < (load.get(pick) ?? 0)) pick = m;
  } else pick = p;
  if (pick === undefined || (pick !== node.id && !node.isReachable(pick))) {
    throw new TroupeError(
      'NODE_DOWN',
      `no live node to place child "${child.id}" on${pick ? ` (${pick} is not reachable)` : ''}`,
    );
  }
  return pick;
}

/** Wait for the DOWN of `mon`, keeping every other message in the mailbox. */
export function downOfMonitor(
  self: ActorContext<unknown>,
  mon: string,
  timeout?: number,
): Promise<Down> {
  return self.receive(
    (m): m is Down => m instanceof Down && m.monitor === mon,
    timeout === undefined ? undefined : { timeout },
  ) as Promise<Down>;
}

/** Register `ref` (an actor on `target`) under `name`, by its own node. */
async function registerOn(
  self: ActorContext<unknown>,
  target: string,
  name: string,
  ref: ActorRef<any, any>,
): Promise<boolean> {
  if (target === self.node.id) return self.node.register(name, ref);
  const reg = await self.spawnOn(target, REGISTRAR, { name, id: ref.id }, { monitor: true });
  const down = (await self.receive(
    (m): m is Down => m instanceof Down && m.ref.equals(reg),
  )) as Down;
  return down.reason === 'normal' && down.result === true;
}

/**
 * Start `spec` as a child of the calling supervisor, linked to it. Resolves with the child's
 * ref, its node and the start function's `stop`.
 * `where.node` is set to the node chosen before the start is tried (to avoid it on a retry).
 * @throws {TroupeError} `NAME_TAKEN` when its name is held by another actor; `NODE_DOWN` when
 * no node fits its placement; whatever the start (spawn, remote spawn, custom start) threw.
 */
export async function startChild(
  self: ActorContext<unknown>,
  spec: ResolvedSpec,
  load: Map<string, number>,
  previous: string | undefined,
  avoid: string | undefined,
  where: { node?: string } = {},
): Promise<{ ref: ActorRef<any, any>; node: string; stop?: () => void }> {
  const s = spec.start;
  const name = spec.name;
  if (typeof s === 'function' || typeof (s as Behaviour<unknown>).handle === 'function') {
    const fn = s as ProcessFn<unknown>;
    try {
      return { ref: self.spawn(fn, { link: true, name, args: spec.args }), node: self.node.id };
    } catch (err) {
      const holder = name === undefined ? undefined : self.node.whereis(name);
      if (
        !(err instanceof TroupeError && err.code === 'NAME_TAKEN') ||
        !holder ||
        holder.node === self.node.id
      )
        throw err;
    }
    // The name is held by an actor of another node whose exit has not reached this node yet.
    for (let i = 0; i < 25 && self.node.whereis(name!); i++)
      await self.receive(() => false, { timeout: 20 }).catch(() => undefined);
    return { ref: self.spawn(fn, { link: true, name, args: spec.args }), node: self.node.id };
  }
  if (typeof (s as { behaviour?: unknown }).behaviour === 'string') {
    const named = s as { behaviour: string; args?: unknown; node?: Placement };
    const target = place(named.node, self.node, { id: spec.id, previous }, load, avoid);
    where.node = target;
    const ref = await self.spawnOn(
      target,
      named.behaviour,
      named.args !== undefined ? named.args : spec.args,
      { link: true },
    );
    if (name !== undefined && !(await registerOn(self, target, name, ref))) {
      self.unlink(ref);
      self.exit(ref, 'kill');
      throw new TroupeError(
        'NAME_TAKEN',
        `child "${spec.id}": could not register "${name}" on ${target}`,
      );
    }
    return { ref, node: target };
  }
  const started: Started = await (
    s as { start: (ctx: ActorContext<unknown>) => Promise<Started> | Started }
  ).start(self);
  self.link(started.ref);
  if (name !== undefined && !(await registerOn(self, started.ref.node, name, started.ref))) {
    self.unlink(started.ref);
    self.exit(started.ref, 'kill');
    started.stop?.();
    throw new TroupeError('NAME_TAKEN', `child "${spec.id}": could not register "${name}"`);
  }
  return { ref: started.ref, node: started.ref.node, stop: started.stop };
}
