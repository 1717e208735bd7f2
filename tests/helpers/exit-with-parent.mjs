// Preloaded (`node --import`) into every node process the multi-process tests start: the test
// holds the child's stdin open, so when the test process dies — even by SIGKILL, when no cleanup
// hook runs — the pipe closes and the child exits instead of lingering (seeds redial forever).
process.stdin.on('end', () => process.exit(70));
process.stdin.on('error', () => process.exit(70));
process.stdin.resume();
