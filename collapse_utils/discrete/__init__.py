"""Discrete distributions refitted exactly (Shumailov et al. 2024, Sec. 3.1).

    theory      survival, fixation, the Wright-Fisher matrix, absorption times (exact and
                diffusion), expected support and Gini-Simpson diversity per regime
    simulate    the counts engine: D_0 per chain, regimes on counts, one multinomial draw
                per generation over all chains
    experiment  the ``discrete``, ``discrete-absorption`` and ``discrete-fixation``
                experiments and the readers of their records
    figures     the chapter's figures, each from a record
    explorer    the ipywidgets explorer and its static figure
    report      the numbers the chapter quotes, one function per section
    tails       a memoriser of Zipf items trained on top-k generated data (Dohmatob et al.),
                the experiment ``zipf-tails``
"""
from . import experiment, tails  # noqa: F401  (registers the experiments)
from . import report  # noqa: F401
from .experiment import (  # noqa: F401
    REGIME_CHOICES, absorption_times, final_fixed, p0_of, run_length, summary_metrics,
)
from .explorer import EXPLORER_DEFAULTS, explore_figure, explore_record, explorer  # noqa: F401
from .figures import (  # noqa: F401
    absorption_figure, fixation_figure, regimes_figure, support_figure, survival_figure,
)
from .simulate import (  # noqa: F401
    AccumulateCounts, KeepRealCounts, SelfCorrectCounts, VerifyCounts, count_regime, gini_simpson,
    support_size,
)
from .theory import (  # noqa: F401
    absorption_time_pmf, binomial_interval, check_distribution, curation_gini_simpson,
    expected_gini_simpson,
    expected_support, fixation_probability, keep_real_stationary_gini_simpson,
    mean_absorption_time_diffusion, mean_absorption_time_exact, one_step_survival,
    survival_probability, verified_support_bound, wright_fisher_matrix, zipf,
)
