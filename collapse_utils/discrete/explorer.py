"""The chapter's explorer: sliders for K, the Zipf exponent, M and the number of generations.

Every redraw reads (or runs) the ``discrete`` experiment through the run cache,
so the explorer shows exactly what the chapter's static figure shows at its
starting values (:data:`EXPLORER_DEFAULTS`).
"""
from __future__ import annotations

from ..plotting import figure
from .figures import plot_support, plot_survival

#: the explorer's starting values (the static figure beside it uses the same)
EXPLORER_DEFAULTS = {"M": 50, "zipf_exponent": 1.0, "generations": 300}
#: the sliders' short labels
SHORT = {"zipf_exponent": "Zipf s"}


def explore_record(M: int, zipf_exponent: float, generations: int, K: int = 20, **overrides):
    """The ``replace`` run of ``discrete`` at these values, from the cache when it is there."""
    from ..experiments import run

    return run("discrete", progress=False, K=K, M=M, zipf_exponent=zipf_exponent,
               generations=generations, regime=["replace"], **overrides)


def explore_figure(record):
    """Survival of a head, a middle and a tail state (top), the support size and the
    diversity (bottom), each against its exact theory: two panels per row at most."""
    K, s = record.settings["K"], record.settings["zipf_exponent"]
    fig, _ = figure(record, 0, height=6.6, note=f"{record.settings['chains']:,} chains",
                    title=f"Zipf(K={K}, s={s:g}), M = {record.settings['M']}: tails go first, "
                    "the support shrinks")
    # two rows laid out apart, so that the key beside the top panel leaves the bottom ones wide
    top, bottom = fig.subfigures(2, 1, height_ratios=(1.25, 1))
    plot_survival(top.add_subplot(), record, states=[0, K // 2 - 1, K - 1],
                  legend_kw=dict(loc="upper left", bbox_to_anchor=(1.01, 1.0)))
    plot_support(bottom.subplots(1, 2), record)
    return fig


def explorer(**overrides):
    """An ipywidgets explorer of :func:`explore_figure` with the controls of the rendered book's
    in-page explorer (:data:`collapse_utils.explorers.CONTROLS`), starting at :data:`EXPLORER_DEFAULTS`."""
    try:
        import ipywidgets as w
    except ImportError:  # pragma: no cover - the static figure stands beside it
        print("ipywidgets is not installed (pip install ipywidgets); the static figure above "
              "shows the starting values")
        return None
    import matplotlib.pyplot as plt

    from ..explorers import CONTROLS

    def show(K, zipf_exponent, M, generations):
        fig = explore_figure(explore_record(M, zipf_exponent, generations, K=K, **overrides))
        plt.show()
        plt.close(fig)

    sliders = {}
    for c in CONTROLS["discrete"]:
        start = EXPLORER_DEFAULTS.get(c["name"], c["value"])
        make = w.IntSlider if isinstance(c["step"], int) else w.FloatSlider
        sliders[c["name"]] = make(value=start, min=c["min"], max=c["max"], step=c["step"],
                                  description=SHORT.get(c["name"], c["name"]),
                                  continuous_update=False)
    return w.interact(show, **sliders)
