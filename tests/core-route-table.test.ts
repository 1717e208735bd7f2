// The router's route table on its own: bounds, the leaf's default route, repointing and loss.
import { describe, expect, it } from 'vitest';
import { RouteTable } from '../core/route-table.ts';

const link = (name: string) => {
  const sent: string[] = [];
  return { name, sent, enqueue: (t: string) => sent.push(t) > 0 };
};

describe('RouteTable', () => {
  it('routes a leaf through its only link, and nothing else without a route', () => {
    const t = new RouteTable<ReturnType<typeof link>>('me', 10);
    expect(t.route('x')).toBeUndefined();
    const up = link('up');
    t.direct.set('up', up);
    expect(t.route('x')).toBe(up);
    t.direct.set('other', link('other'));
    expect(t.route('x')).toBeUndefined();
    expect(t.isReachable('me')).toBe(true);
    expect(t.isReachable('x')).toBe(false);
  });

  it('learns routes and addresses within its bound', () => {
    const t = new RouteTable<ReturnType<typeof link>>('me', 2);
    const a = link('a');
    expect(t.learn('n1', a)).toBe(true);
    expect(t.learn('n1', link('b'))).toBe(false);
    expect(t.learn('n2', a)).toBe(true);
    expect(t.learn('n3', a)).toBe(false);
    expect(t.route('n1')).toBe(a);
    t.learnAddresses('n1', ['x:1']);
    t.learnAddresses('n2', ['x:2']);
    t.learnAddresses('n3', ['x:3']);
    t.learnAddresses('n1', ['x:9']);
    expect([...t.addresses]).toEqual([
      ['n1', ['x:9']],
      ['n2', ['x:2']],
    ]);
    t.learnFirstAddresses('n2', ['y']);
    expect(t.addresses.get('n2')).toEqual(['x:2']);
  });

  it('repoints and drops the routes through a link, and broadcasts to direct links', () => {
    const t = new RouteTable<ReturnType<typeof link>>('me', 10);
    const a = link('a');
    const b = link('b');
    t.direct.set('a', a);
    t.direct.set('b', b);
    t.learn('n1', a);
    t.learn('n2', a);
    t.learn('n3', b);
    t.repoint(a, b);
    expect(t.route('n1')).toBe(b);
    expect(t.dropVia(b).sort()).toEqual(['n1', 'n2', 'n3']);
    expect(t.routes.size).toBe(0);
    t.broadcast('hello', a);
    expect(a.sent).toEqual([]);
    expect(b.sent).toEqual(['hello']);
  });
});
