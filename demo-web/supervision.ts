// The demo's own supervision tree, so the cluster view has one to show live: each tab runs a
// supervisor registered as `sup:<node id>` with a named greeter and a "flaky" worker that fails
// on its own now and then (a simulated fault); the view shows its restarts and last exit reason.
import { supervisor, type Node, type ProcessFn, type SupervisorRef } from '../core/index.ts';
import { SUPERVISOR_PREFIX } from './cluster-probe.ts';

/** Answers every call with a greeting from its node. */
const greeter: ProcessFn<unknown> = async (self) => {
  for (;;) {
    const m = await self.receive();
    self.reply(`hello ${String(m)} from ${self.node.id}`);
  }
};

/** Fails after 20–50 s, or at once on 'crash'. */
const flaky: ProcessFn<unknown> = async (self) => {
  await self
    .receive((m) => m === 'crash', { timeout: 20_000 + Math.random() * 30_000 })
    .catch(() => undefined);
  throw new Error('simulated fault');
};

/**
 * Start this tab's demo supervisor (one_for_one: `greeter`, registered as `greeter:<node id>`,
 * and `flaky`). Returns its ref.
 */
export function startDemoSupervisor(node: Node): SupervisorRef {
  return node.spawn(
    supervisor({
      strategy: 'one_for_one',
      intensity: 5,
      period: 10_000,
      children: [
        { id: 'greeter', start: greeter, name: `greeter:${node.id}` },
        { id: 'flaky', start: flaky },
      ],
    }),
    { name: `${SUPERVISOR_PREFIX}${node.id}` },
  );
}
