"""Gaussians refitted generation after generation (Shumailov et al. 2024, Sec. 3.2, Theorem 3.1).

One job per module:

    theory      exact 1-D moments after n fits (c_M, E sigma_n, E W_2^2, ...), E log det Sigma_n;
                the curation regimes' moments (self-correct exactly, verify's fixed point)
    curation    the verifier (rejection sampling with the density ratio) and the corrector
    selection   selection bias: the nearest-the-mean selector, its exact recursion, the
                experiment ``gaussian-selection``
    w2          2-Wasserstein distances: Gaussian to Gaussian (Gelbrich), Gaussian to a 1-D sample
    simulate    many chains at once through the core loop, on sufficient statistics
    experiment  the experiments ``gaussian``, ``gaussian-curation`` and ``gaussian-intro``
    figures     the chapters' figures, drawn from records (the curation chapter's too)
    report      the numbers the chapter's prose quotes and checks, one function per section

Generations are the loop's everywhere: generation 0 is the fit to the real data D_0,
so generation g holds the model after n = g + 1 fits; theory functions take n.
"""
from . import report, selection  # noqa: F401  (selection registers gaussian-selection)
from .experiment import (REFERENCE_SIZE, chain_mean, chain_summaries, example_covariance, probe_direction,
                         run_gaussian, run_intro)
from .simulate import (METHODS, SOURCES, draw_points, draw_stats, fit_gaussian, pack,
                       points_to_stats, pooled_stats, sample_source, simulate)
from .theory import (ESTIMATORS, accumulate_mean_bound, c_m, critical_error, expected_log_det,
                     expected_sigma, expected_w2_squared, log_c_m, log_det_drift,
                     self_correct_limit, self_correct_theory, source_lower_bound, theory_1d,
                     truncated_variance, verify_limit, verify_theory)
from .w2 import (check_covariance, psd_sqrt, quantile_moments, w2, w2_squared, w2_squared_1d,
                 w2_squared_normal_to_sample)

#: figure functions, imported on first use (they need matplotlib; the CLI does not)
FIGURES = ("plot_intro", "plot_mean_median", "plot_distance", "plot_public", "plot_estimators",
           "plot_regimes", "plot_schedules", "plot_dimensions", "plot_sources",
           "plot_verify_transition", "plot_self_correct", "plot_curation_discrete")


def __getattr__(name):
    if name in FIGURES:
        from . import figures

        return getattr(figures, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
