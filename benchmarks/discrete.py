"""Benchmark: discrete.simulate against a per-chain Python loop (issue 3).

Work: 10^4 chains x 10^3 generations of a K = 10 state distribution (uniform p0),
M = 100 samples per generation, regime "replace".

* ``simulate``: all chains advance together, one multinomial draw per generation
  (chains already absorbed in a delta are deterministic and skip the draw).
* the loop: the straightforward version, one chain at a time, one
  ``rng.multinomial`` call per chain and generation.  It is timed on a subset of
  chains and scaled linearly to 10^4 (chains are independent, so the cost is
  linear in their number); the subset size is printed.

Peak memory of ``simulate`` is measured with tracemalloc in a separate run (numpy
reports its allocations to tracemalloc); the result array alone is
10^4 x 1001 x 10 float64 = 0.80 GB.  The process's peak resident size
(ru_maxrss) is printed too.

This VM backs guest memory lazily and takes back memory freed for more than a
moment, so touching 0.8 GB that the process has not touched recently costs
seconds here (far less on an ordinary machine).  The script therefore reports
a cold run (the first in the process), warm runs (the same amount of memory
touched just before each), the cost of the first touch alone, and the engine
without the result array (``simulate_absorption``: the same draws, keeping only
absorption times).  Other jobs share the two cores, so it prints every repeat's
wall-clock time and the process's CPU time (user + system), which is less
sensitive to that noise.

    python benchmarks/discrete.py [--chains 10000] [--generations 1000] [--loop-chains 200]
"""
from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc

import numpy as np

from collapse_utils.discrete.simulate import absorption as simulate_absorption
from collapse_utils.discrete.simulate import trajectories as simulate


def per_chain_loop(p0, M, generations, chains, seed=0):
    """The straightforward version: a Python loop over chains and generations."""
    rng = np.random.default_rng(seed)
    out = np.empty((chains, generations + 1, p0.size))
    for c in range(chains):
        p = p0
        out[c, 0] = p
        for n in range(1, generations + 1):
            p = rng.multinomial(M, p) / M
            out[c, n] = p
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chains", type=int, default=10_000)
    ap.add_argument("--generations", type=int, default=1000)
    ap.add_argument("--K", type=int, default=10)
    ap.add_argument("--M", type=int, default=100)
    ap.add_argument("--loop-chains", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    p0 = np.full(args.K, 1.0 / args.K)
    GiB = 2**30
    load_before = os.getloadavg()[0]

    result_shape = (args.chains, args.generations + 1, args.K)

    def timed(fn):
        t0, c0 = time.perf_counter(), time.process_time()
        value = fn()
        return value, time.perf_counter() - t0, time.process_time() - c0

    def run():
        return simulate(p0, args.M, args.generations, chains=args.chains, seed=0)

    # cold: the first touch of the 0.8 GB result in this process
    P, cold_wall, cold_cpu = timed(run)
    absorbed = float(np.mean(np.count_nonzero(P[:, -1] > 0, axis=-1) == 1))
    del P
    # warm: touch as much memory as the result right before each run (see the docstring)
    times, cpu = [], []
    for r in range(args.repeats):
        warm = np.empty(result_shape)
        warm.fill(0.0)
        del warm
        P, wall, c = timed(run)
        times.append(wall)
        cpu.append(c)
        del P
    t_vec = float(np.median(times))
    # the engine alone: same draws, no trajectories kept
    _, engine_wall, engine_cpu = timed(
        lambda: simulate_absorption(p0, args.M, args.generations, chains=args.chains, seed=0))
    # what the first touch of that much memory costs here, without any simulation
    _, touch_wall, touch_cpu = timed(lambda: np.ones(result_shape).sum())

    tracemalloc.start()
    P = simulate(p0, args.M, args.generations, chains=args.chains, seed=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    result_bytes = P.nbytes
    del P

    t0, c0 = time.perf_counter(), time.process_time()
    per_chain_loop(p0, args.M, args.generations, args.loop_chains, seed=0)
    t_loop_subset = time.perf_counter() - t0
    cpu_loop = (time.process_time() - c0) * args.chains / args.loop_chains
    t_loop = t_loop_subset * args.chains / args.loop_chains

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(f"load average (1 min) before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    print(f"work: {args.chains} chains x {args.generations} generations, K = {args.K}, "
          f"M = {args.M}, uniform p0 (absorbed by the last generation: {absorbed:.1%})")
    print(f"simulate, warm memory: {t_vec:.2f} s wall, median of {args.repeats} "
          f"(wall {', '.join(f'{t:.2f}' for t in times)} s; "
          f"CPU {', '.join(f'{t:.2f}' for t in cpu)} s)")
    print(f"simulate, cold memory: {cold_wall:.2f} s wall, {cold_cpu:.2f} s CPU "
          f"(first run in the process)")
    print(f"  of which first touch of {np.prod(result_shape) * 8 / 1e9:.1f} GB here: about "
          f"{touch_wall:.2f} s wall, {touch_cpu:.2f} s CPU (np.ones of that shape, alone)")
    print(f"engine alone (simulate_absorption, same draws, no trajectories): "
          f"{engine_wall:.2f} s wall, {engine_cpu:.2f} s CPU")
    print(f"per-chain loop:  {t_loop:.1f} s wall, {cpu_loop:.1f} s CPU (timed {t_loop_subset:.2f} s "
          f"on {args.loop_chains} chains, scaled x{args.chains / args.loop_chains:g})")
    print(f"speed-up:        {t_loop / t_vec:.0f}x wall (median), "
          f"{cpu_loop / float(np.median(cpu)):.0f}x CPU")
    print(f"peak memory of simulate (tracemalloc): {peak / GiB:.2f} GiB "
          f"(result array {result_bytes / GiB:.2f} GiB)")
    print(f"peak resident size of this process: {rss / GiB:.2f} GiB")


if __name__ == "__main__":
    main()
