// The envelope readers as the tests knew them from protocol.ts: functions over one shared
// EnvelopeReader, whose fields (`directFields`, `canonicalHop`) hold what the last read found.
// The core holds its own readers (one per router); this one serves the tests alone.
import { EnvelopeReader } from '../../core/envelope.ts';

const reader = new EnvelopeReader();

/** The numbers of the last direct header {@link parseDirectHeader} read. */
export const directFields = reader.direct;
/** Where the hop count of the last canonical header {@link parseHeader} read lies. */
export const canonicalHop = reader.hop;
/** See EnvelopeReader.parseDirect. */
export const parseDirectHeader = (text: string, end: number): boolean =>
  reader.parseDirect(text, end);
/** See EnvelopeReader.parseHeader. */
export const parseHeader = (text: string): unknown => reader.parseHeader(text);

export {
  DIRECT_CALL,
  DIRECT_REPLY,
  DIRECT_SEND,
  envelope,
  fastHeader,
  nextHopText,
} from '../../core/envelope.ts';
export { directHeader, TrafficHeaders } from '../../core/envelope-write.ts';
export { EnvelopeHeader } from '../../core/protocol.ts';
