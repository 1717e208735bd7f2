// The raw baseline's worker: plain postMessage with structured clone, no troupe.
import { rawAnswer, type RawMsg } from './echo.ts';

const state = { count: 0 };
self.onmessage = (e: MessageEvent<RawMsg>) => {
  const out = rawAnswer(state, e.data);
  if (out !== undefined) self.postMessage(out);
};
