"""Gaussian mixtures refitted generation after generation (Shumailov et al. 2024, supplement).

One job per module:

    mixture     the model: :class:`Mixture`, the protocol's EM fit, sampling, density, spreads
    distance    the closed-form squared L2 distance between mixtures
    data        the real data: one unit blob (the public notebook) or two separated blobs
    tails       tail masses, tail ratios and tail coverage
    theory      sampling-error drift of a refitted Gaussian; effective sample sizes
    measure     one generation's metrics
    curation    what verify and self-correct know of p_0: the verifier, the corrector, predictions
    selection   Qiao et al.'s selection bias in 10-D: truths, selector, EM, ``gmm-selection``
    sampling_bias  sampling bias lambda in a fully synthetic loop, k-NN precision and recall
    experiment  settings schemas, the run function, the ``gmm``, ``gmm-sweep`` and
                ``gmm-curation`` experiments
    figures     scatter grids, the protocol's panels, the sweep's bands, the curation figures
    report      the numbers the chapter's prose quotes, one function per section
"""
from . import experiment  # noqa: F401  (registers gmm, gmm-sweep and gmm-curation)
from . import report  # noqa: F401  (the numbers the chapter quotes)
from . import sampling_bias, selection  # noqa: F401  (register gmm-sampling-bias, gmm-selection)
from .curation import (
    ModelTracker, acceptance, corrector, error_for_share, self_corrected_std, transport_map,
    verified_share, verifier,
)
from .data import VARIANTS, blob_centres, original_mixture, real_data
from .distance import l2_distance
from .experiment import (
    CURATION_SETTINGS, GMM_SETTINGS, PAPER_PROFILE_RUN, SCATTER_GENERATIONS, SWEEP_SETTINGS,
    make_run_regime, run_chain, run_curation, run_real_data,
)
from .figures import (
    draw_mixture, load_models, plot_protocol, plot_scatter_grid, plot_self_correct, plot_sweep,
    plot_verifier_transition, scatter_generations, sweep_metric,
)
from .measure import measure_mixture
from .mixture import (
    Mixture, as_mixture, component_geo_stds, component_stds, fit_mixture, mixture_logpdf,
    mixture_moments, sample_mixture,
)
from .tails import TAIL_RADII, tail_coverage, tail_mass, tail_masses, tail_ratio
from .theory import effective_drift, effective_log_std, expected_log_std_drift, reference_std

__all__ = [
    "CURATION_SETTINGS", "ModelTracker", "acceptance", "corrector", "error_for_share",
    "make_run_regime", "plot_self_correct", "plot_verifier_transition", "run_curation",
    "self_corrected_std", "transport_map", "verified_share", "verifier",
    "GMM_SETTINGS", "Mixture", "PAPER_PROFILE_RUN", "SCATTER_GENERATIONS", "SWEEP_SETTINGS",
    "TAIL_RADII", "VARIANTS", "as_mixture", "draw_mixture", "load_models", "plot_protocol",
    "plot_scatter_grid", "plot_sweep", "scatter_generations", "sweep_metric", "blob_centres", "component_geo_stds",
    "component_stds", "effective_drift", "effective_log_std", "expected_log_std_drift",
    "fit_mixture", "l2_distance", "measure_mixture", "mixture_logpdf", "mixture_moments",
    "original_mixture", "real_data", "reference_std", "run_chain", "run_real_data",
    "sample_mixture", "tail_coverage", "tail_mass", "tail_masses", "tail_ratio",
]
