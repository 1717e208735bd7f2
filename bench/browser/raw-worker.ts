// The raw baseline's worker: plain postMessage with structured clone, no troupe.
import { rawAnswer, type RawMsg } from './echo.ts';

const state = { count: 0 };
// A string is a JSON batch (`{ k: 'b', m: [...] }`), parsed here as the baseline's cost.
self.onmessage = (e: MessageEvent<RawMsg | string>) => {
  const out = rawAnswer(
    state,
    typeof e.data === 'string' ? (JSON.parse(e.data) as RawMsg) : e.data,
  );
  if (out !== undefined) self.postMessage(out);
};
