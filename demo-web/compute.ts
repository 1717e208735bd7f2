// The multi-worker computation: a parallel map of Mandelbrot tiles over N Web Workers, each a
// troupe node linked to this page — `parallelMap('tile', …)` over a `createWebWorkerPool` pool
// (troupe/patterns/browser), one tile per chunk and two chunks in flight per worker (whoever is
// free takes the next tile). It runs the job on 1, 2, … N workers (optionally plus the cluster's
// Node nodes, which serve the same function), paints tiles as they arrive, measures each run,
// and checks every result against the same image computed single-threaded in the page.
import { TroupeError, type Node } from '../core/index.ts';
import { createWebWorkerPool, type WebWorkerPool } from '../patterns/browser.ts';
import { functionServers, macrotask, type ServerInfo } from '../patterns/functions.ts';
import { nodePool, parallelMap, type MapPool } from '../patterns/parallel-map.ts';
import {
  DEFAULT_JOB,
  checksum,
  computeTile,
  decodeCounts,
  paint,
  palette,
  placeTile,
  tilesOf,
  type MandelbrotJob,
  type Tile,
  type TileRequest,
  type TileResult,
} from './mandelbrot.ts';
import { TILE_FUNCTION } from './tile-functions.ts';
import { el } from './dom.ts';

/** One measured run. */
export interface RunResult {
  /** `workers` Web Workers, or 0 for the page's main thread alone. */
  workers: number;
  /** Node nodes that took part. */
  nodes: number;
  ms: number;
  checksum: string;
  /** Time the workers spent computing, summed over tiles (the rest of `ms` is messaging and waiting). */
  busyMs: number;
  /** Tiles each node computed. */
  perNode: Record<string, number>;
}

/** What a full run of the view produced (also what `troupeDemo.runCompute()` resolves with). */
export interface ComputeResult {
  runs: RunResult[];
  reference: RunResult;
  /** Whether every run's checksum equals the single-threaded reference. */
  ok: boolean;
}

/** The workers of `pools` (in order), or only those in `only`, as one pool. */
function poolOf(pools: MapPool[], only?: readonly string[]): MapPool {
  const owner = (id: string) => pools.find((p) => p.workers().includes(id));
  return {
    workers: () => pools.flatMap((p) => p.workers()).filter((id) => !only || only.includes(id)),
    runChunk: (id, fn, items, timeout) => {
      const pool = owner(id);
      if (!pool) return Promise.reject(new TroupeError('NO_ACTOR', `worker ${id} left the pool`));
      return pool.runChunk(id, fn, items, timeout);
    },
  };
}

/**
 * Compute `job` on `pool`, `perWorker` tiles in flight per worker; `onTile` runs as each tile
 * arrives. A worker lost with a tile: the tile is retried on another one (parallelMap's retry).
 */
export async function runJob(
  job: MandelbrotJob,
  pool: MapPool,
  onTile: (tile: Tile, counts: Uint16Array, result: TileResult) => void,
  perWorker = 2,
): Promise<{ image: Uint16Array; ms: number; busyMs: number; perNode: Record<string, number> }> {
  const tiles = tilesOf(job);
  const image = new Uint16Array(job.width * job.height);
  const perNode: Record<string, number> = {};
  let busyMs = 0;
  const t0 = performance.now();
  await parallelMap<TileRequest, TileResult>(
    TILE_FUNCTION,
    tiles.map((tile) => ({ job, tile })),
    {
      workers: pool,
      chunkSize: 1,
      perWorker,
      chunkTimeout: 30_000,
      onChunk: (results, start) => {
        results.forEach((result, k) => {
          const tile = tiles[start + k];
          const counts = decodeCounts(result.counts, tile.w * tile.h);
          placeTile(job, tile, counts, image);
          perNode[result.node] = (perNode[result.node] ?? 0) + 1;
          busyMs += result.ms;
          onTile(tile, counts, result);
        });
      },
    },
  );
  return { image, ms: performance.now() - t0, busyMs, perNode };
}

/** Yield to the event loop (no 4 ms timer clamping; see `macrotask`). */
function yieldNow(): Promise<void> {
  return new Promise((resolve) => macrotask(resolve));
}

/** The same job, single-threaded on the page's main thread (yielding between tiles). */
async function runInPage(
  job: MandelbrotJob,
  onTile: (tile: Tile, counts: Uint16Array) => void,
): Promise<{ image: Uint16Array; ms: number }> {
  const image = new Uint16Array(job.width * job.height);
  let busy = 0;
  for (const tile of tilesOf(job)) {
    const t = performance.now();
    const counts = computeTile(job, tile);
    busy += performance.now() - t;
    placeTile(job, tile, counts, image);
    onTile(tile, counts);
    await yieldNow();
  }
  // Compute time only: the yields that keep the page responsive are not the job's cost.
  return { image, ms: busy };
}

/** The compute view. */
export class ComputeView {
  #node: Node;
  /** The page's Web Workers (made on first use, then resized). */
  #pool: Promise<WebWorkerPool> | undefined;
  #workers: WebWorkerPool | undefined;
  #root: HTMLElement;
  #job: MandelbrotJob = DEFAULT_JOB;
  #colours = palette(DEFAULT_JOB.maxIter);
  #canvas!: HTMLCanvasElement;
  #ctx!: CanvasRenderingContext2D;
  #start!: HTMLButtonElement;
  #count!: HTMLSelectElement;
  #withNodes!: HTMLInputElement;
  #bar!: HTMLElement;
  #progress!: HTMLElement;
  #status!: HTMLElement;
  #table!: HTMLTableSectionElement;
  #chart!: HTMLElement;
  #checksum!: HTMLElement;
  #reference!: HTMLElement;
  #verdict!: HTMLElement;
  #poolInfo!: HTMLElement;
  #running: Promise<ComputeResult> | undefined;
  #ref: RunResult | undefined;
  #last: ComputeResult | undefined;

  constructor(root: HTMLElement, node: Node) {
    this.#root = root;
    this.#node = node;
    this.#build();
    // A worker that dies leaves the pool: show it (once the pool has seen its server go down).
    node.events.on('linkDown', () => setTimeout(() => this.#showPool(), 0));
  }

  /** Start the default number of workers. */
  async start(): Promise<void> {
    await this.#resize(Number(this.#count.value));
  }

  /** Node ids of the page's workers, in order. */
  get workerIds(): string[] {
    return this.#workers?.workerIds() ?? [];
  }

  /** Start or stop workers until there are `n`. */
  async #resize(n: number): Promise<WebWorkerPool> {
    this.#pool ??= createWebWorkerPool({
      node: this.#node,
      size: 0,
      spawn: (name) =>
        new Worker(new URL('./compute-worker.ts', import.meta.url), { type: 'module', name }),
    }).then((pool) => (this.#workers = pool));
    const pool = await this.#pool;
    try {
      await pool.resize(n);
    } finally {
      this.#showPool();
    }
    return pool;
  }

  /** The last finished run, if any. */
  get last(): ComputeResult | undefined {
    return this.#last;
  }

  /** Run the sweep (1..N workers, optionally with the Node nodes, then the reference). */
  run(options: { workers?: number; withNodes?: boolean } = {}): Promise<ComputeResult> {
    if (this.#running) return this.#running;
    if (options.workers !== undefined) this.#count.value = String(options.workers);
    if (options.withNodes !== undefined) this.#withNodes.checked = options.withNodes;
    this.#running = this.#sweep().finally(() => {
      this.#running = undefined;
      this.#start.disabled = false;
      this.#count.disabled = false;
      this.#root.querySelector('.compute-figure')?.removeAttribute('aria-busy');
    });
    return this.#running;
  }

  #build(): void {
    const max = Math.max(2, Math.min(8, navigator.hardwareConcurrency || 4));
    this.#count = el('select', {
      id: 'compute-workers',
      'data-testid': 'compute-workers',
    }) as HTMLSelectElement;
    for (let n = 1; n <= 8; n++) this.#count.append(el('option', { value: String(n) }, String(n)));
    this.#count.value = String(max);
    this.#count.addEventListener(
      'change',
      () =>
        void this.#resize(Number(this.#count.value)).catch((err) =>
          this.#say(`Failed: ${(err as Error).message}`, true),
        ),
    );
    this.#withNodes = el('input', {
      type: 'checkbox',
      id: 'compute-with-nodes',
      'data-testid': 'compute-with-nodes',
    }) as HTMLInputElement;
    this.#start = el(
      'button',
      { class: 'primary', type: 'button', 'data-testid': 'compute-start' },
      'Run on 1…N workers',
    ) as HTMLButtonElement;
    this.#start.addEventListener(
      'click',
      () => void this.run().catch((err) => this.#say(`Failed: ${(err as Error).message}`, true)),
    );
    this.#canvas = el('canvas', {
      width: String(this.#job.width),
      height: String(this.#job.height),
      'data-testid': 'compute-canvas',
      role: 'img',
      'aria-label': 'The Mandelbrot image, painted tile by tile as workers return them',
    }) as HTMLCanvasElement;
    this.#ctx = this.#canvas.getContext('2d')!;
    this.#ctx.fillStyle = '#0b1020';
    this.#ctx.fillRect(0, 0, this.#job.width, this.#job.height);
    this.#bar = el('div', { class: 'bar-fill' });
    this.#progress = el(
      'div',
      {
        class: 'progress',
        role: 'progressbar',
        'aria-label': 'Computation progress',
        'aria-valuemin': '0',
        'aria-valuemax': '100',
        'aria-valuenow': '0',
        'data-testid': 'compute-progress',
      },
      this.#bar,
    );
    this.#status = el(
      'p',
      { class: 'compute-status', 'data-testid': 'compute-status', 'aria-live': 'polite' },
      'Ready.',
    );
    this.#checksum = el('code', { 'data-testid': 'compute-checksum' }, '—');
    this.#reference = el('code', { 'data-testid': 'compute-reference-checksum' }, '—');
    this.#verdict = el(
      'span',
      { class: 'verdict', 'data-testid': 'compute-verified', 'data-state': 'pending' },
      'not run yet',
    );
    this.#table = el('tbody') as HTMLTableSectionElement;
    this.#chart = el('div', { class: 'speedup-chart', 'data-testid': 'compute-speedup-chart' });
    this.#poolInfo = el('span', { class: 'muted', 'data-testid': 'compute-pool' });
    const tiles = tilesOf(this.#job).length;

    this.#root.append(
      el(
        'div',
        { class: 'compute-layout' },
        el(
          'div',
          { class: 'card compute-main' },
          el(
            'div',
            { class: 'toolbar' },
            el('label', { for: 'compute-workers' }, 'Workers (N)'),
            this.#count,
            el('label', { class: 'check' }, this.#withNodes, ' also use the Node nodes'),
            this.#start,
            this.#poolInfo,
          ),
          this.#progress,
          this.#status,
          el('figure', { class: 'compute-figure' }, this.#canvas),
          el(
            'p',
            { class: 'muted small' },
            `${this.#job.width}×${this.#job.height} pixels, ${tiles} tiles of ${this.#job.tile}×${this.#job.tile}, up to ${this.#job.maxIter} iterations per pixel. ` +
              "Each tile is one chunk of parallelMap('tile', …) over a pool of Web Workers, each a troupe node serving the tile function; two tiles stay in flight per worker.",
          ),
        ),
        el(
          'div',
          { class: 'card compute-side' },
          el('h2', {}, 'Speedup'),
          el(
            'table',
            { class: 'data', 'data-testid': 'compute-speedup-table' },
            el(
              'thead',
              {},
              el(
                'tr',
                {},
                el('th', { scope: 'col' }, 'Run'),
                el('th', { scope: 'col' }, 'Time'),
                el('th', { scope: 'col' }, 'Speedup'),
                el('th', { scope: 'col' }, 'Checksum'),
              ),
            ),
            this.#table,
          ),
          this.#chart,
          el('h2', {}, 'Result'),
          el(
            'dl',
            { class: 'facts' },
            el('dt', {}, 'Image checksum (workers)'),
            el('dd', {}, this.#checksum),
            el('dt', {}, 'Single-threaded reference'),
            el('dd', {}, this.#reference),
            el('dt', {}, 'Verdict'),
            el('dd', {}, this.#verdict),
          ),
          el(
            'p',
            { class: 'muted small' },
            'The checksum is FNV-1a over every pixel’s iteration count, row by row: the same image gives the same checksum whatever the tile order or the number of workers.',
          ),
        ),
      ),
    );
  }

  #showPool(): void {
    const ids = this.workerIds;
    this.#poolInfo.textContent = ids.length
      ? `${ids.length} worker node${ids.length > 1 ? 's' : ''} up`
      : 'no workers';
    this.#poolInfo.title = ids.join(', ');
  }

  #say(text: string, error = false): void {
    this.#status.textContent = text;
    this.#status.classList.toggle('error', error);
  }

  #setProgress(fraction: number): void {
    const pct = Math.round(fraction * 1000) / 10;
    this.#bar.style.width = `${pct}%`;
    this.#progress.setAttribute('aria-valuenow', String(Math.round(pct)));
    this.#progress.dataset.value = String(pct);
  }

  #paintTile(tile: Tile, counts: Uint16Array): void {
    const img = this.#ctx.createImageData(tile.w, tile.h);
    paint(counts, this.#colours, img.data);
    this.#ctx.putImageData(img, tile.x, tile.y);
  }

  #clearCanvas(): void {
    this.#ctx.fillStyle = '#0b1020';
    this.#ctx.fillRect(0, 0, this.#job.width, this.#job.height);
  }

  /** The cluster's function servers (the demo's Node nodes) that serve the tile function. */
  async #tileNodes(): Promise<string[]> {
    const servers = [...functionServers(this.#node)].filter(([id]) => this.#node.isReachable(id));
    const infos = await Promise.all(
      servers.map(([, ref]) =>
        this.#node
          .call<ServerInfo>(ref, { op: 'describe' }, { timeout: 5000 })
          .catch(() => undefined),
      ),
    );
    return infos
      .filter(
        (info): info is ServerInfo => info !== undefined && info.functions.includes(TILE_FUNCTION),
      )
      .map((info) => info.node)
      .sort();
  }

  async #sweep(): Promise<ComputeResult> {
    this.#start.disabled = true;
    this.#count.disabled = true;
    this.#root.querySelector('.compute-figure')?.setAttribute('aria-busy', 'true');
    const n = Number(this.#count.value);
    this.#say(`Starting ${n} workers…`);
    const pool = await this.#resize(n);
    const workerIds = pool.workerIds();
    if (workerIds.length === 0) throw new Error('no worker could be started');
    const nodeIds = this.#withNodes.checked ? await this.#tileNodes() : [];
    const everyone = poolOf([pool, nodePool(this.#node, { nodes: nodeIds })]);
    // Warm up every worker's JIT on a small image first, so the 1-worker run is not the cold one.
    this.#say('Warming up the workers…');
    const warm: MandelbrotJob = {
      ...this.#job,
      width: this.#job.tile * 4,
      height: this.#job.tile * 2,
    };
    await Promise.all(
      [...workerIds, ...nodeIds].map((id) => runJob(warm, poolOf([everyone], [id]), () => {}, 1)),
    );
    const plan: { workers: number; nodes: number }[] = [];
    for (let k = 1; k <= workerIds.length; k++) plan.push({ workers: k, nodes: 0 });
    if (nodeIds.length) plan.push({ workers: workerIds.length, nodes: nodeIds.length });
    const tiles = tilesOf(this.#job).length;
    const needRef = !this.#ref;
    const totalSteps = (plan.length + (needRef ? 1 : 0)) * tiles;
    let done = 0;
    this.#table.replaceChildren();
    this.#chart.replaceChildren();
    this.#checksum.textContent = '—';
    this.#verdict.textContent = 'running…';
    this.#verdict.dataset.state = 'pending';
    const runs: RunResult[] = [];
    for (const [i, step] of plan.entries()) {
      this.#clearCanvas();
      const label = step.nodes
        ? `${step.workers} workers + ${step.nodes} Node nodes`
        : `${step.workers} worker${step.workers > 1 ? 's' : ''}`;
      let mine = 0;
      const some = poolOf(
        [everyone],
        [...workerIds.slice(0, step.workers), ...nodeIds.slice(0, step.nodes)],
      );
      const r = await runJob(this.#job, some, (tile, counts) => {
        this.#paintTile(tile, counts);
        mine++;
        done++;
        this.#setProgress(done / totalSteps);
        this.#say(`Run ${i + 1} of ${plan.length} — ${label}: ${mine}/${tiles} tiles`);
      });
      const run: RunResult = {
        workers: step.workers,
        nodes: step.nodes,
        ms: r.ms,
        busyMs: r.busyMs,
        checksum: checksum(r.image),
        perNode: r.perNode,
      };
      runs.push(run);
      this.#checksum.textContent = run.checksum;
      this.#renderTable(runs, this.#ref);
    }
    if (needRef) {
      let mine = 0;
      this.#say('Computing the single-threaded reference on the page’s main thread…');
      const r = await runInPage(this.#job, () => {
        mine++;
        done++;
        if (mine % 8 === 0) this.#setProgress(done / totalSteps);
      });
      this.#ref = {
        workers: 0,
        nodes: 0,
        ms: r.ms,
        busyMs: r.ms,
        checksum: checksum(r.image),
        perNode: { [this.#node.id]: tiles },
      };
    }
    const reference = this.#ref!;
    this.#setProgress(1);
    this.#reference.textContent = reference.checksum;
    const ok = runs.every((r) => r.checksum === reference.checksum);
    this.#verdict.textContent = ok
      ? `✓ match — all ${runs.length} runs equal the reference`
      : '✗ mismatch';
    this.#verdict.dataset.state = ok ? 'ok' : 'bad';
    this.#renderTable(runs, reference);
    const best = Math.max(...runs.filter((r) => !r.nodes).map((r) => runs[0].ms / r.ms));
    this.#say(
      `Done: ${runs.length} runs, best speedup ${best.toFixed(2)}× on ${workerIds.length} workers (this machine reports ${navigator.hardwareConcurrency || '?'} cores).`,
    );
    this.#last = { runs, reference, ok };
    return this.#last;
  }

  #renderTable(runs: RunResult[], reference: RunResult | undefined): void {
    const base = runs[0]?.ms;
    const rows: HTMLElement[] = [];
    const row = (r: RunResult, label: string, testid: string): HTMLElement => {
      const good = reference ? r.checksum === reference.checksum : undefined;
      return el(
        'tr',
        {
          'data-testid': testid,
          'data-workers': String(r.workers),
          'data-nodes': String(r.nodes),
          'data-ms': r.ms.toFixed(1),
          title: `tiles per node: ${Object.entries(r.perNode)
            .map(([n, k]) => `${n} ${k}`)
            .join(', ')}; compute time ${r.busyMs.toFixed(0)} ms`,
        },
        el('th', { scope: 'row' }, label),
        el('td', { class: 'num' }, `${r.ms.toFixed(0)} ms`),
        el(
          'td',
          { class: 'num', 'data-testid': 'speedup' },
          r.workers && base ? `${(base / r.ms).toFixed(2)}×` : '—',
        ),
        el(
          'td',
          {},
          el('code', { class: good === undefined ? '' : good ? 'ok' : 'bad' }, r.checksum),
          good === undefined ? '' : good ? ' ✓' : ' ✗',
        ),
      );
    };
    for (const r of runs)
      rows.push(
        row(
          r,
          r.nodes
            ? `${r.workers} workers + ${r.nodes} Node nodes`
            : `${r.workers} worker${r.workers > 1 ? 's' : ''}`,
          'speedup-row',
        ),
      );
    if (reference) rows.push(row(reference, 'main thread, no worker', 'speedup-reference'));
    this.#table.replaceChildren(...rows);
    this.#renderChart(runs.filter((r) => !r.nodes));
  }

  /** Bars: measured speedup per worker count, against the ideal (a dashed line). */
  #renderChart(runs: RunResult[]): void {
    if (!runs.length) return this.#chart.replaceChildren();
    const W = 320;
    const H = 150;
    const pad = { l: 30, r: 8, t: 10, b: 24 };
    const maxK = runs.length;
    const top = Math.max(maxK, ...runs.map((r) => runs[0].ms / r.ms));
    const x = (k: number) => pad.l + ((k - 0.5) / maxK) * (W - pad.l - pad.r);
    const y = (v: number) => H - pad.b - (v / top) * (H - pad.t - pad.b);
    const bw = Math.min(36, ((W - pad.l - pad.r) / maxK) * 0.6);
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('role', 'img');
    svg.setAttribute(
      'aria-label',
      `Speedup by number of workers: ${runs.map((r) => `${r.workers}: ${(runs[0].ms / r.ms).toFixed(2)}×`).join(', ')}`,
    );
    const add = (tag: string, attrs: Record<string, string | number>, text?: string) => {
      const e = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
      if (text !== undefined) e.textContent = text;
      svg.append(e);
      return e;
    };
    for (let v = 1; v <= Math.ceil(top); v++) {
      add('line', { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: 'grid' });
      add('text', { x: pad.l - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'tick' }, `${v}×`);
    }
    add('polyline', {
      points: runs.map((r) => `${x(r.workers)},${y(r.workers)}`).join(' '),
      class: 'ideal',
    });
    for (const r of runs) {
      const s = runs[0].ms / r.ms;
      add('rect', {
        x: x(r.workers) - bw / 2,
        y: y(s),
        width: bw,
        height: Math.max(1, y(0) - y(s)),
        rx: 3,
        class: 'bar',
      });
      add(
        'text',
        { x: x(r.workers), y: y(s) - 4, 'text-anchor': 'middle', class: 'value' },
        `${s.toFixed(2)}`,
      );
      add(
        'text',
        { x: x(r.workers), y: H - 8, 'text-anchor': 'middle', class: 'tick' },
        String(r.workers),
      );
    }
    const legend = el(
      'p',
      { class: 'muted small legend' },
      el('span', { class: 'swatch bar' }),
      ' measured speedup',
      el('span', { class: 'swatch ideal' }),
      ' ideal (k workers: k×)',
    );
    this.#chart.replaceChildren(svg, legend);
  }
}
