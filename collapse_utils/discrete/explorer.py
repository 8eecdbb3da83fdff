"""The chapter's explorer: sliders for M, the Zipf exponent and the number of generations.

Every redraw reads (or runs) the ``discrete`` experiment through the run cache,
so the explorer shows exactly what the chapter's static figure shows at its
starting values (:data:`EXPLORER_DEFAULTS`).
"""
from __future__ import annotations

from ..plotting import profile_note
from .figures import plot_support, plot_survival

#: the explorer's starting values (the static figure beside it uses the same)
EXPLORER_DEFAULTS = {"M": 50, "zipf_exponent": 1.0, "generations": 300}


def explore_record(M: int, zipf_exponent: float, generations: int, K: int = 20, **overrides):
    """The ``replace`` run of ``discrete`` at these values, from the cache when it is there."""
    from ..experiments import run

    return run("discrete", progress=False, K=K, M=M, zipf_exponent=zipf_exponent,
               generations=generations, regime=["replace"], **overrides)


def explore_figure(record):
    """Survival of a head, a middle and a tail state (top), the support size and the
    diversity (bottom), each against its exact theory: two panels per row at most."""
    import matplotlib.pyplot as plt

    K, s = record.settings["K"], record.settings["zipf_exponent"]
    fig = plt.figure(figsize=(9, 8))
    grid = fig.add_gridspec(2, 2, height_ratios=(1.25, 1))
    plot_survival(fig.add_subplot(grid[0, :]), record, states=[0, K // 2 - 1, K - 1],
                  legend_kw=dict(loc="upper left", bbox_to_anchor=(1.01, 1.0)))
    plot_support([fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])], record)
    fig.suptitle(f"Zipf(K={K}, s={s:g}), M = {record.settings['M']}: tails go first, "
                 "the support shrinks")
    profile_note(fig, record, f"{record.settings['chains']:,} chains")
    return fig


def explorer(K: int = 20, **overrides):
    """An ipywidgets explorer of :func:`explore_figure`, starting at :data:`EXPLORER_DEFAULTS`."""
    try:
        import ipywidgets as w
    except ImportError:  # pragma: no cover - the static figure stands beside it
        print("ipywidgets is not installed (pip install ipywidgets); the static figure above "
              "shows the starting values")
        return None
    import matplotlib.pyplot as plt

    def show(M, zipf_exponent, generations):
        fig = explore_figure(explore_record(M, zipf_exponent, generations, K=K, **overrides))
        plt.show()
        plt.close(fig)

    start = EXPLORER_DEFAULTS
    return w.interact(
        show,
        M=w.IntSlider(value=start["M"], min=10, max=400, step=10, description="M",
                      continuous_update=False),
        zipf_exponent=w.FloatSlider(value=start["zipf_exponent"], min=0.0, max=3.0, step=0.1,
                                    description="Zipf s", continuous_update=False),
        generations=w.IntSlider(value=start["generations"], min=10, max=1000, step=10,
                                description="generations", continuous_update=False),
    )
