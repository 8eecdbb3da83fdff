"""Kernel density estimates refitted on their own samples: one run, several definitions.

A Gaussian KDE is fitted to M points, M new points are drawn from it (the smoothed
bootstrap), and the loop repeats (Borji 2024).  The same chains are measured by
every definition the chapter "What collapse means" tabulates (Schaeffer et al. 2025):
spread, tail mass, KL to the real distribution (the real-test loss), TV and W2.

    simulate    real data, KDE fit (bandwidth rules) and sampling, in chains
    measure     KL and TV on a grid, W2 by quantiles, tail mass, W2 of two samples
    theory      the exact expected variance and mean drift; a Gaussian reference
    experiment  ``kde``
    figures     the chapter's figures
    report      the numbers the chapter quotes, one function per section
"""
from . import experiment, figures, measure, simulate, theory  # noqa: F401  (registers the experiment)
from . import report  # noqa: F401
