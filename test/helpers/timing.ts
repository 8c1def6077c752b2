// Time as a ratio, never as a threshold: how much longer the code under test takes on a larger
// input than on a smaller one, in one run on one machine, so a slow machine changes both timings
// alike. Each size is timed several times, interleaved, and its fastest time kept (what a pause or
// a collection cannot inflate). 4× the input: linear code takes about 4× the time, quadratic 16×.
// Under Node, time the process's CPU (cpuTime): a busy machine preempts a long run more than a
// short one, which would inflate a wall-clock ratio. Under workerd the clock advances only across
// I/O, so there the timed work must include it (a request to the Worker does), and its clock counts
// whole milliseconds.

export interface Growth {
  /** Fastest time at the small size and at the large one, in ms. */
  small: number;
  large: number;
  /** large / small, the small time floored at `floorMs` so a clock's grain cannot divide by zero. */
  ratio: number;
}

/** The process's CPU time (user and system) in ms, under Node. */
export function cpuTime(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

export async function growth(
  run: (size: number) => unknown,
  [smallSize, largeSize]: [number, number],
  {
    repeats = 5,
    floorMs = 0.05,
    clock = () => performance.now(),
  }: { repeats?: number; floorMs?: number; clock?: () => number } = {},
): Promise<Growth> {
  const time = async (size: number) => {
    const started = clock();
    await run(size);
    return clock() - started;
  };
  let small = Number.POSITIVE_INFINITY;
  let large = Number.POSITIVE_INFINITY;
  for (let i = 0; i < repeats; i++) {
    small = Math.min(small, await time(smallSize));
    large = Math.min(large, await time(largeSize));
  }
  return { small, large, ratio: large / Math.max(small, floorMs) };
}

/** A growth as a failure message: both times and the ratio. */
export const described = (g: Growth) => `${g.small.toFixed(2)} ms → ${g.large.toFixed(2)} ms (×${g.ratio.toFixed(1)})`;
