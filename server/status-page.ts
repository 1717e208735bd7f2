// A live status page for a distributor (plain node:http, no framework): the known workers and
// their health, the jobs each is running now, queue lengths, throughput and recent failures.
// `/` is the page, `/status.json` a snapshot, `/events` a server-sent-event stream of snapshots
// (pushed on every change, at most every 100 ms, and every second anyway); the page falls back
// to polling the JSON when event streams are unavailable.
import http from 'node:http';
import type { Distributor, DistributorStatus } from '../patterns/distributor.ts';

/** Options of {@link serveStatusPage}. */
export interface StatusPageOptions {
  /** Interface to listen on. @default '127.0.0.1' */
  host?: string;
  /** Port; 0 picks a free one. @default 0 */
  port?: number;
  /** Push a snapshot at least this often (ms), so ages on the page move. @default 1000 */
  interval?: number;
}

/** A running status page. */
export interface StatusPage {
  /** `http://host:port/` */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serve the status page of `dist`.
 * @example
 * const page = await serveStatusPage(createDistributor(node));
 * console.log(`status page: ${page.url}`);
 */
export async function serveStatusPage(
  dist: Distributor,
  options: StatusPageOptions = {},
): Promise<StatusPage> {
  const host = options.host ?? '127.0.0.1';
  const clients = new Set<http.ServerResponse>();
  const snapshot = (): string => JSON.stringify(dist.status() satisfies DistributorStatus);

  let pending: ReturnType<typeof setTimeout> | undefined;
  let lastPush = 0;
  const push = (): void => {
    if (clients.size === 0) return;
    const data = `data: ${snapshot()}\n\n`;
    lastPush = Date.now();
    for (const res of clients) res.write(data);
  };
  // Changes come in bursts (a thousand jobs): coalesce them to one push per 100 ms.
  const offChange = dist.onChange(() => {
    if (pending || clients.size === 0) return;
    pending = setTimeout(
      () => {
        pending = undefined;
        push();
      },
      Math.max(0, 100 - (Date.now() - lastPush)),
    );
  });
  const ticker = setInterval(push, options.interval ?? 1000);

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    if (path === '/') {
      res
        .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
        .end(PAGE);
    } else if (path === '/status.json') {
      res
        .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
        .end(snapshot());
    } else if (path === '/events') {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      res.write(`retry: 1000\ndata: ${snapshot()}\n\n`);
      clients.add(res);
      req.on('close', () => clients.delete(res));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://${host}:${port}/`,
    async close() {
      offChange();
      clearInterval(ticker);
      if (pending) clearTimeout(pending);
      for (const res of clients) res.end();
      clients.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>troupe distributor</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
  h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
  .meta { color: #666; margin-bottom: 1rem; }
  .cards { display: flex; gap: 1rem; flex-wrap: wrap; margin-bottom: 1rem; }
  .card { border: 1px solid #ddd; border-radius: 6px; padding: .5rem .8rem; min-width: 8rem; }
  .card b { display: block; font-size: 1.4rem; }
  table { border-collapse: collapse; width: 100%; margin-bottom: 1rem; }
  th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #eee; vertical-align: top; }
  tr[data-health="lost"] { color: #999; }
  .health-up { color: #117a3a; font-weight: 600; }
  .health-lost { color: #b3261e; font-weight: 600; }
  .job { display: inline-block; background: #eef3ff; border-radius: 4px; padding: 0 .35rem; margin: 0 .25rem .15rem 0; }
  .none { color: #aaa; }
  #conn.off { color: #b3261e; }
  ul { padding-left: 1.2rem; }
</style>
</head>
<body>
<h1>troupe distributor <span id="name"></span></h1>
<div class="meta">node <span id="node"></span> · updated <span id="updated">never</span> · <span id="conn">connecting…</span></div>
<div class="cards">
  <div class="card">workers up<b id="workers-up">0</b></div>
  <div class="card">queued<b id="queue">0</b></div>
  <div class="card">jobs/s<b id="rate">0</b></div>
  <div class="card">completed<b id="completed">0</b></div>
  <div class="card">failed<b id="failed">0</b></div>
  <div class="card">retried<b id="retried">0</b></div>
</div>
<h2>Workers</h2>
<table id="workers">
  <thead><tr><th>worker</th><th>health</th><th>running now</th><th>load</th><th>done</th><th>failed</th><th>functions</th></tr></thead>
  <tbody></tbody>
</table>
<h2>Queue</h2>
<div id="queue-by-fn" class="none">empty</div>
<h2>Recent failures</h2>
<ul id="failures"><li class="none">none</li></ul>
<script>
(() => {
  const $ = (id) => document.getElementById(id);
  const el = (tag, props, ...kids) => { const e = document.createElement(tag); Object.assign(e, props || {}); for (const k of kids) e.append(k); return e; };
  const ago = (t, now) => ((now - t) / 1000).toFixed(1) + ' s';
  function render(s) {
    $('name').textContent = s.name ? '"' + s.name + '"' : '';
    $('node').textContent = s.node;
    $('updated').textContent = new Date(s.at).toLocaleTimeString();
    $('workers-up').textContent = s.workers.filter((w) => w.health === 'up').length;
    $('queue').textContent = s.queue.length;
    $('rate').textContent = s.throughput.perSecond.toFixed(1);
    $('completed').textContent = s.throughput.completed;
    $('failed').textContent = s.throughput.failed;
    $('retried').textContent = s.throughput.retried;
    const body = $('workers').tBodies[0];
    body.replaceChildren(...s.workers.map((w) => {
      const running = w.running.length
        ? w.running.map((j) => el('span', { className: 'job', textContent: '#' + j.job + ' ' + j.fn + ' ' + ago(j.since, s.at) + (j.attempt > 1 ? ' (try ' + j.attempt + ')' : '') }))
        : [el('span', { className: 'none', textContent: 'idle' })];
      running.forEach((r, i) => w.running[i] && (r.dataset.job = w.running[i].job));
      const health = w.health === 'up' ? 'up' : 'lost' + (w.lostReason ? ' (' + w.lostReason + ')' : '');
      const tr = el('tr', {},
        el('td', { className: 'worker', textContent: w.node }),
        el('td', { className: 'health health-' + w.health, textContent: health }),
        el('td', { className: 'running' }, ...running),
        el('td', { textContent: w.running.length + '/' + w.capacity }),
        el('td', { textContent: w.completed }),
        el('td', { textContent: w.failed }),
        el('td', { textContent: w.functions.join(', ') }));
      tr.dataset.worker = w.node;
      tr.dataset.health = w.health;
      return tr;
    }));
    const q = Object.entries(s.queue.byFunction);
    $('queue-by-fn').className = q.length ? '' : 'none';
    $('queue-by-fn').textContent = q.length ? q.map(([f, n]) => f + ': ' + n).join(' · ') : 'empty';
    const fl = s.recentFailures.slice().reverse();
    $('failures').replaceChildren(...(fl.length ? fl.map((f) => el('li', { textContent: new Date(f.at).toLocaleTimeString() + ' job #' + f.job + ' ' + f.fn + (f.worker ? ' on ' + f.worker : '') + ': ' + f.code + (f.retried ? ' (retried)' : '') + ' — ' + f.message })) : [el('li', { className: 'none', textContent: 'none' })]));
  }
  function poll() {
    $('conn').textContent = 'polling';
    const tick = () => fetch('status.json', { cache: 'no-store' }).then((r) => r.json()).then(render, () => { $('conn').textContent = 'offline'; $('conn').className = 'off'; }).finally(() => setTimeout(tick, 1000));
    tick();
  }
  if (!window.EventSource) return poll();
  const es = new EventSource('events');
  es.onmessage = (ev) => { $('conn').textContent = 'live'; $('conn').className = ''; render(JSON.parse(ev.data)); };
  es.onerror = () => { $('conn').textContent = 'reconnecting…'; $('conn').className = 'off'; };
})();
</script>
</body>
</html>
`;
