// The shared transport contract, run against the in-process memory adapter.
import { createMemoryPair } from '../adapters/memory.ts';
import { runTransportContract } from './transport-contract.ts';

runTransportContract('memory', async () => {
  const [a, b] = createMemoryPair();
  return { a, b };
});
