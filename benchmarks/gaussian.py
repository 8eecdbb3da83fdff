"""Benchmark: gaussian.simulate against a straightforward per-chain loop.

Work: 10^4 chains x 10^3 generations of the 1-D Gaussian refit at M = 100 (unbiased
variance, replace).  ``simulate`` runs all chains at once through the core loop and
draws each generation's sufficient statistics (mean ~ N, scatter ~ sigma^2 chi2_{M-1});
the baseline is the textbook loop, one chain at a time, drawing M points per
generation and refitting them with numpy.  The baseline would take minutes, so it is
timed on a subset of chains and scaled linearly to 10^4 (its cost is exactly
proportional to the number of chains); this is printed.  A third line times the
vectorised point-drawing path (``method="points"``) on a subset, also scaled.

Wall times on a shared machine depend on its load (``uptime`` is printed); the process
CPU time of the same run is printed beside the wall time of the fast path.

Peak memory: tracemalloc's peak of numpy allocations during the call (numpy reports
its buffers to tracemalloc) and the process's maximum resident set size.

    .venv/bin/python benchmarks/gaussian.py [--chains 10000] [--generations 1000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc

import numpy as np

from collapse_utils import gaussian


def per_chain_loop(chains: int, generations: int, M: int, seed: int = 0) -> np.ndarray:
    """The straightforward version: a Python loop over chains and generations, M points each."""
    rng = np.random.default_rng(seed)
    sigmas = np.empty((chains, generations + 1))
    for c in range(chains):
        mu, sigma = 0.0, 1.0
        sigmas[c, 0] = sigma
        for n in range(1, generations + 1):
            x = rng.normal(mu, sigma, M)
            mu, sigma = x.mean(), x.std(ddof=1)
            sigmas[c, n] = sigma
    return sigmas


CPU = {}


def timed(fn, repeat: int = 1):
    """Best wall time of ``repeat`` runs (and, in CPU[fn], that run's process CPU time)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        out = None  # free the previous result first, so peak memory counts one run
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if wall < best:
            best, CPU[fn] = wall, cpu
    return best, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chains", type=int, default=10_000)
    p.add_argument("--generations", type=int, default=1000)
    p.add_argument("--M", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--loop-chains", type=int, default=50, help="subset timed for the per-chain loop")
    p.add_argument("--points-chains", type=int, default=500, help="subset timed for method='points'")
    a = p.parse_args()
    work = f"{a.chains} chains x {a.generations} generations, M = {a.M}, 1-D"
    print(f"gaussian.simulate benchmark: {work}")
    print(f"  load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())}")

    run = lambda: gaussian.simulate(0.0, 1.0, a.M, a.generations, chains=a.chains, seed=0)
    gaussian.simulate(0.0, 1.0, a.M, 5, chains=a.chains, seed=0)  # imports, first calls
    tracemalloc.start()
    t_cold, result = timed(run, 1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    means, covs = result
    out_gib = (means.nbytes + covs.nbytes) / 2**30
    del means, covs, result
    t_fast, _ = timed(run, a.repeat)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(f"  simulate (sufficient statistics):   {t_fast:8.3f} s   (best of {a.repeat} warm runs; "
          f"CPU time {CPU[run]:.3f} s)")
    print(f"    first run in this process:        {t_cold:8.3f} s   (includes first-touch page faults "
          f"of the {out_gib:.3f} GiB it returns)")
    print(f"    peak numpy memory {peak / 2**30:.3f} GiB (the returned arrays: {out_gib:.3f} GiB), "
          f"process max RSS {rss:.3f} GiB")

    t_sub, _ = timed(lambda: per_chain_loop(a.loop_chains, a.generations, a.M))
    t_loop = t_sub * a.chains / a.loop_chains
    print(f"  per-chain Python loop, M points:    {t_loop:8.3f} s   (timed on {a.loop_chains} chains: "
          f"{t_sub:.3f} s, scaled x{a.chains / a.loop_chains:g})")

    t_psub, _ = timed(lambda: gaussian.simulate(0.0, 1.0, a.M, a.generations,
                                                chains=a.points_chains, seed=0, method="points"))
    t_points = t_psub * a.chains / a.points_chains
    print(f"  simulate(method='points'):          {t_points:8.3f} s   (timed on {a.points_chains} chains: "
          f"{t_psub:.3f} s, scaled x{a.chains / a.points_chains:g})")
    print(f"  speed-up over the per-chain loop: x{t_loop / t_fast:,.0f}; "
          f"over vectorised points: x{t_points / t_fast:,.0f}")
    print(f"  targets: < 0.5 s -> {'met' if t_fast < 0.5 else 'NOT met'}; "
          f"< 1 GiB -> {'met' if peak < 2**30 else 'NOT met'}")


if __name__ == "__main__":
    main()
