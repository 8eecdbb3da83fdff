"""Linear regression refitted on its own labels: the theorems after the paper.

Gerstgrasser et al. (2024): replacing data makes the excess risk grow linearly in
the generations, accumulating keeps it below pi^2/6 times one fit's; Kazdan et al.
(2024): a fixed budget drawn from everything lies in between; Dohmatob et al.
(2024): a constant share of synthetic labels puts a floor under the test error;
curation by a verifier (Feng et al. 2024) and self-correction (Gillman et al. 2024);
and, for comparison, the three self-consuming loops of Alemohammad et al. (2023) on a
1-D Gaussian (a small simulation of its own, independent of the Gaussian family).

    simulate    data, least squares, samples, verifier and corrector, in chains
    theory      the closed forms and bounds
    experiment  ``linear-regression`` and ``linear-regression-mix``
    loops       ``self-consuming-gaussian``: fully synthetic, synthetic augmentation, fresh data
    verification  a biased verifier (Yi et al. 2025): its population map, ``linear-regression-verifier``
    figures     the chapter's figures
    report      the numbers the beyond and curation chapters quote, one function per section
"""
from . import experiment, figures, loops, simulate, theory, verification  # noqa: F401  (registers the experiments)
from . import report  # noqa: F401
from .experiment import regime_theory  # noqa: F401
