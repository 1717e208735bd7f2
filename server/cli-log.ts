// What the `troupe` command prints: readable lines by default, one JSON object per line with
// `--log json` (for log collectors and scripts). Errors go to stderr in both formats.

import type { Node } from '../core/index.ts';

/** The output formats of `--log`. */
export const LOG_FORMATS = ['text', 'json'] as const;
/** One of {@link LOG_FORMATS}. */
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The CLI's output. */
export interface CliLog {
  readonly format: LogFormat;
  /** A progress line: `[hh:mm:ss.mmm] message`, or `{ time, level: 'info', msg, …fields }`. */
  info(msg: string, fields?: Record<string, unknown>): void;
  /** The line scripts wait for: `listening ID ADDRESS…`, or `{ event: 'listening', node, addresses }`. */
  listening(node: string, addresses: readonly string[]): void;
  /** A line for the user as it is (help, results); in JSON, `{ time, level: 'info', msg }`. */
  out(text: string, fields?: Record<string, unknown>): void;
  /** A failure on stderr: `troupe: message`, or `{ time, level: 'error', msg, …fields }`. */
  error(msg: string, fields?: Record<string, unknown>): void;
}

const stamp = (): string => new Date().toISOString().slice(11, 23);

/** The log for `format`. */
export function createCliLog(format: LogFormat): CliLog {
  if (format === 'json') {
    const emit = (
      stream: NodeJS.WriteStream,
      level: string,
      msg: string | undefined,
      fields: Record<string, unknown> = {},
    ): void => {
      stream.write(
        `${JSON.stringify({ time: new Date().toISOString(), level, ...(msg === undefined ? {} : { msg }), ...fields })}\n`,
      );
    };
    return {
      format,
      info: (msg, fields) => emit(process.stdout, 'info', msg, fields),
      listening: (node, addresses) =>
        emit(process.stdout, 'info', undefined, { event: 'listening', node, addresses }),
      out: (text, fields) => emit(process.stdout, 'info', text, fields),
      error: (msg, fields) => emit(process.stderr, 'error', msg, fields),
    };
  }
  return {
    format,
    info: (msg) => console.log(`[${stamp()}] ${msg}`),
    listening: (node, addresses) => console.log(`listening ${node} ${addresses.join(' ')}`),
    out: (text) => console.log(text),
    error: (msg) => console.error(`troupe: ${msg}`),
  };
}

/**
 * Log a node's link and error events as the `troupe` commands print them: links up and down
 * (and, with `all`, nodes down and actor crashes) unless `quiet`; refused peers always.
 */
export function logNodeEvents(node: Node, log: CliLog, quiet: boolean, all: boolean): void {
  if (!quiet) {
    node.events.on('linkUp', (e) =>
      log.info(`link up: ${e.node} (${e.label})`, {
        event: 'linkUp',
        node: e.node,
        label: e.label,
      }),
    );
    node.events.on('linkDown', (e) =>
      log.info(`link down: ${e.node} (${e.reason})`, {
        event: 'linkDown',
        node: e.node,
        reason: e.reason,
      }),
    );
  }
  if (!quiet && all) {
    node.events.on('nodeDown', (e) =>
      log.info(`node down: ${e.node} (${e.reason})`, {
        event: 'nodeDown',
        node: e.node,
        reason: e.reason,
      }),
    );
    node.events.on('actorCrashed', (e) =>
      log.info(`actor ${e.ref.key} crashed: ${e.reason.name}: ${e.reason.message}`, {
        event: 'actorCrashed',
        actor: e.ref.key,
      }),
    );
  }
  node.events.on('protocolError', (e) =>
    log.info(`refused: ${e.error.code} ${e.error.message}`, {
      event: 'protocolError',
      code: e.error.code,
    }),
  );
}
