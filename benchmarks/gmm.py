"""Timings of the Gaussian-mixture chapter (plain script; prints, asserts nothing).

    python benchmarks/gmm.py [--generations N] [--paper]

1. Seconds per generation of the protocol (fit from scratch + sample + metrics),
   with one BLAS/OpenMP thread (what ``gmm.run_chain`` uses) and with the library
   defaults.  On a 2-core machine shared with other jobs the default threads of
   k-means made a fit ~10x slower, which is why the run limits them.
2. What a warm start (sklearn ``warm_start=True``: EM starts at the previous
   generation's fit) would save.  The chapter does NOT use it: the public code
   refits from scratch, and a warm start changes the learning procedure (the
   k-means re-split of every generation is part of the approximation error).
3. ``--paper``: the whole paper profile (2050 generations) through the CLI code path.
"""
from __future__ import annotations

import argparse
import resource
import time
import warnings

import numpy as np

from collapse_utils import gmm
from collapse_utils.experiments import resolve_settings
from collapse_utils.loop import rng_for


def per_generation(generations: int, limit_threads: bool) -> float:
    from threadpoolctl import threadpool_limits

    s = resolve_settings("gmm", "paper", {"generations": generations})
    s.pop("seeds")
    t = time.perf_counter()
    if limit_threads:
        gmm.run_chain(s, progress=False)  # limits threads itself
    else:
        # the same loop, threads as the libraries choose
        real = gmm.real_data(1000, rng=rng_for(0, "real"))
        from collapse_utils.loop import run_generations
        original = gmm.original_mixture()
        with threadpool_limits(limits=None):
            run_generations(gmm.fit_mixture, gmm.sample_mixture, real, generations,
                            measure=lambda g: gmm.measure_mixture(g.model, g.first_model, original),
                            progress=False)
    return (time.perf_counter() - t) / (generations + 1)


def warm_vs_cold(generations: int) -> tuple[float, float, float, float]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    out = []
    for warm in (False, True):
        x = gmm.real_data(1000, rng=np.random.default_rng(1))
        est = GaussianMixture(2, covariance_type="full", tol=1e-5, max_iter=2000, random_state=0,
                              warm_start=warm)
        iters, t = [], time.perf_counter()
        with threadpool_limits(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for _ in range(generations):
                if not warm:
                    est = GaussianMixture(2, covariance_type="full", tol=1e-5, max_iter=2000,
                                          random_state=int(rng.integers(2**31 - 1)))
                est.fit(x)
                iters.append(est.n_iter_)
                x = gmm.sample_mixture(gmm.as_mixture(est), 1000, rng)
        out += [(time.perf_counter() - t) / generations, float(np.mean(iters))]
    return tuple(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--generations", type=int, default=200)
    p.add_argument("--paper", action="store_true", help="also time the full paper profile")
    a = p.parse_args()
    n = a.generations
    print(f"protocol, {n} generations, M = 1000")
    print(f"  one thread      : {1e3 * per_generation(n, True):7.1f} ms / generation")
    print(f"  library default : {1e3 * per_generation(n, False):7.1f} ms / generation")
    cold_t, cold_it, warm_t, warm_it = warm_vs_cold(n)
    print(f"  from scratch    : {1e3 * cold_t:7.1f} ms / fit, {cold_it:6.1f} EM iterations  (used)")
    print(f"  warm start      : {1e3 * warm_t:7.1f} ms / fit, {warm_it:6.1f} EM iterations  (not used)")
    if a.paper:
        from collapse_utils.experiments import run_experiment

        cpu0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime
        t = time.perf_counter()
        rec = run_experiment("gmm", profile="paper", progress=False)
        cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu0
        m = rec.metric("component_std")[0]
        print(f"paper profile: 2050 generations in {time.perf_counter() - t:.0f} s wall, "
              f"{cpu:.0f} s CPU; component std {m[0]:.4f} -> {m[-1]:.4f}")


if __name__ == "__main__":
    main()
