// The CPU-bound function of the parallelMap fixture, shared by the page (the plain map it is
// compared with) and the workers (which serve it by name).
/** Naive Fibonacci: exponential time, on purpose. */
export function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}
