"""Explorers and self-check questions that run in the rendered page, without a kernel.

A notebook cell calls :func:`explorer` (or :func:`quiz`); its output is a small HTML block
that ``book/_static/explorers.js`` (served from the built site, no CDN) turns into sliders,
an animated canvas and a printed statistic, or into questions with feedback.  The controls
of each explorer (names, ranges, starting values) live here, in :data:`CONTROLS`, and
the ipywidgets explorers of Jupyter and Colab (:func:`widgets`) use the same ones.

The JavaScript simulations mirror the package's: ``discrete`` the exact refit of a Zipf law
(:mod:`collapse_utils.discrete`), ``gaussian`` and ``mixing`` the 1-D Gaussian refit
(:mod:`collapse_utils.gaussian`, regimes of :mod:`collapse_utils.regimes`), ``kde`` the
smoothed bootstrap (:mod:`collapse_utils.kde`); tests/test_explorers.py runs them in Node and
checks them against this package's exact theory and simulations.
"""
from __future__ import annotations

import html
import json
import math

#: kind -> controls: a slider {name, label, min, max, step, value}, a slider over a list of
#: ``values``, or a menu of ``choices`` [(value, label)]; ``simplex`` links weights summing to 1
CONTROLS: dict[str, list[dict]] = {
    "discrete": [
        dict(name="K", label="states K", min=2, max=40, step=1, value=20),
        dict(name="zipf_exponent", label="Zipf exponent s", min=0.0, max=3.0, step=0.1, value=1.0),
        dict(name="M", label="sample size M", min=10, max=200, step=10, value=50),
        dict(name="generations", label="generations", min=10, max=500, step=10, value=300),
    ],
    "gaussian": [
        dict(name="M", label="sample size M", values=[2, 3, 5, 10, 20, 50, 100, 200, 500, 1000], value=100),
        dict(name="generations", label="generations", min=10, max=1000, step=10, value=500),
        dict(name="estimator", label="variance estimator",
             choices=[("unbiased", "unbiased (ddof 1)"), ("mle", "maximum likelihood (ddof 0)")],
             value="unbiased"),
        dict(name="regime", label="data regime",
             choices=[("replace", "replace"), ("accumulate", "accumulate"),
                      ("keep-real", "keep a share of real data")], value="replace"),
        dict(name="real_fraction", label="real share (keep-real)", min=0.0, max=0.5, step=0.05,
             value=0.1),
    ],
    "mixing": [
        dict(name="alpha", label="\u03b1 (model)", min=0.0, max=1.0, step=0.05, value=1.0,
             simplex=["alpha", "beta", "gamma"]),
        dict(name="beta", label="\u03b2 (previous data)", min=0.0, max=1.0, step=0.05, value=0.0,
             simplex=["alpha", "beta", "gamma"]),
        dict(name="gamma", label="\u03b3 (original data)", min=0.0, max=1.0, step=0.05, value=0.0,
             simplex=["alpha", "beta", "gamma"]),
        dict(name="M", label="sample size M", values=[10, 20, 50, 100, 200, 500], value=100),
        dict(name="generations", label="generations", min=10, max=300, step=10, value=200),
    ],
    "kde": [
        dict(name="rule", label="bandwidth rule",
             choices=[("scott", "Scott: h = s M^(-1/5)"), ("silverman", "Silverman: h = s (3M/4)^(-1/5)"),
                      ("fixed", "fixed h")], value="scott"),
        dict(name="h", label="fixed h", min=0.02, max=0.5, step=0.02, value=0.1),
        dict(name="M", label="sample size M", values=[10, 20, 50, 100, 200], value=50),
        dict(name="generations", label="generations", min=10, max=200, step=10, value=50),
    ],
}

#: what a reader cannot change: the number of chains (and the first seed)
FIXED: dict[str, dict] = {
    "discrete": dict(chains=200, seed=1),
    "gaussian": dict(chains=200, seed=1),
    "mixing": dict(chains=100, seed=1),
    "kde": dict(chains=100, seed=1),
}


def defaults(kind: str) -> dict:
    """The starting value of every control of ``kind``, and its fixed settings."""
    return {**{c["name"]: c["value"] for c in CONTROLS[kind]}, **FIXED[kind]}


def _params(kind: str, values: dict) -> dict:
    unknown = set(values) - {c["name"] for c in CONTROLS[kind]}
    if unknown:
        raise ValueError(f"explorer {kind!r} has no control {sorted(unknown)}")
    controls = [dict(c, value=values.get(c["name"], c["value"])) for c in CONTROLS[kind]]
    return {"controls": controls, "fixed": FIXED[kind]}


def explorer_html(kind: str, title: str | None = None, **values) -> str:
    """The HTML block that explorers.js fills: ``<div class="mc-explorer" data-kind=...>``.

    ``values`` move a control's starting value (and its Reset) away from :data:`CONTROLS`.
    Without JavaScript (Jupyter, Colab) the block says where the interactive version is.
    """
    if kind not in CONTROLS:
        raise ValueError(f"kind must be one of {', '.join(CONTROLS)}; got {kind!r}")
    params = _params(kind, values)
    if title:
        params["title"] = title
    data = html.escape(json.dumps(params, ensure_ascii=False), quote=True)
    return (f'<div class="mc-explorer" id="explorer-{kind}" data-kind="{kind}" data-params="{data}">'
            '<p class="mc-explorer-fallback"><em>The rendered book shows an interactive explorer '
            'here, running in the browser. In Jupyter or Colab, the ipywidgets explorer of the '
            'next cell has the same controls.</em></p></div>')


def explorer(kind: str, title: str | None = None, **values):
    """The in-page explorer of ``kind`` as a displayable object (see :func:`explorer_html`)."""
    from IPython.display import HTML

    return HTML(explorer_html(kind, title, **values))


# ----------------------------------------------------------------------------- questions
def choice(text: str, options: list, why: dict | None = None) -> dict:
    """A multiple-choice question: ``options`` is a list of (text, correct, feedback)."""
    opts = [dict(text=html.escape(t), correct=bool(ok), why=html.escape(fb)) for t, ok, fb in options]
    if sum(o["correct"] for o in opts) != 1:
        raise ValueError(f"exactly one option must be correct: {text!r}")
    return dict(type="choice", text=html.escape(text), options=opts)


def number(text: str, answer: float, tol: float | None = None, digits: int = 3, why: str = "",
           unit: str = "") -> dict:
    """A numeric question whose ``answer`` comes from the chapter's own computation.

    Accepted within ``tol``, and never less than half a unit of the last of ``digits``
    significant digits: the answer as the page shows it is always right.
    """
    answer = float(answer)
    if not math.isfinite(answer):
        raise ValueError(f"the answer of {text!r} is not a finite number: {answer}")
    shown = f"{answer:.{digits}g}"
    exponent = math.floor(math.log10(abs(answer))) if answer else 0
    tol = max(tol or 0.0, 0.5 * 10 ** (exponent - digits + 1) + 1e-12)
    return dict(type="number", text=html.escape(text), answer=answer, tol=float(tol), shown=shown,
                why=html.escape(why), unit=html.escape(unit))


def quiz_html(questions: list[dict], title: str = "Check yourself") -> str:
    """The HTML block that explorers.js turns into questions answered in the page.

    Without JavaScript the questions and their answers (folded) still read as a list.
    """
    items = []
    for q in questions:
        if q["type"] == "number":
            answer = f"{q['shown']} {q['unit']}".strip() + (f". {q['why']}" if q["why"] else "")
            body = ""
        else:
            right = next(o for o in q["options"] if o["correct"])
            answer = f"{right['text']}. {right['why']}"
            body = "<ul>" + "".join(f"<li>{o['text']}</li>" for o in q["options"]) + "</ul>"
        items.append(f"<li><p>{q['text']}</p>{body}<details><summary>Answer</summary>"
                     f"<p>{answer}</p></details></li>")
    data = html.escape(json.dumps(questions, ensure_ascii=False), quote=True)
    return (f'<div class="mc-quiz" data-quiz="{data}" aria-label="{html.escape(title)}">'
            f'<ol>{"".join(items)}</ol></div>')


def quiz(questions: list[dict], title: str = "Check yourself"):
    """Self-check questions as a displayable object (see :func:`quiz_html`)."""
    from IPython.display import HTML

    return HTML(quiz_html(questions, title))


# ----------------------------------------------------------------------------- the same runs in Python
def gaussian_sigmas(M: int, generations: int, chains: int, *, estimator: str = "unbiased",
                    regime: str = "replace", real_fraction: float = 0.1, alpha: float = 1.0,
                    beta: float = 0.0, gamma: float = 0.0, seed: int = 0):
    """Fitted sigma, shape (chains, generations + 1), of the package's 1-D Gaussian refit of
    N(0, 1): what the ``gaussian`` explorer (``regime``) and the ``mixing`` one (``regime="mix"``
    with alpha, beta, gamma; :class:`~collapse_utils.regimes.Mix`) simulate."""
    import importlib

    import numpy as np

    from .regimes import Mix

    # the module, not the function of the same name that collapse_utils.gaussian exports
    gs = importlib.import_module("collapse_utils.gaussian.simulate")

    if regime == "mix":
        prep = gs.prepare(0.0, 1.0, M, generations, chains, estimator, seed, "keep-real", None,
                          0.0, "points", None)
        prep["regime"] = Mix(alpha, beta, gamma)
        sd = np.empty((generations + 1, chains))

        def store(gen):
            sd[gen.index] = np.sqrt(gen.model[1][:, 0, 0])
            return {}

        gs.run_chains(prep, store)
        return sd.T
    _, covs = gs.simulate(0.0, 1.0, M, generations, chains, estimator, seed, regime,
                          real_fraction=real_fraction)
    return np.sqrt(covs[:, :, 0, 0])


def widgets(kind: str):
    """The ipywidgets explorer of ``kind`` for Jupyter and Colab, with :data:`CONTROLS`' controls
    (``discrete`` is :func:`collapse_utils.discrete.explorer`)."""
    if kind == "discrete":
        from .discrete.explorer import explorer as discrete_explorer

        return discrete_explorer()
    try:
        import ipywidgets as w
    except ImportError:  # pragma: no cover - the rendered book has the in-page explorer
        print("ipywidgets is not installed (pip install ipywidgets)")
        return None
    if kind not in ("gaussian", "mixing"):
        raise ValueError(f"no ipywidgets explorer for {kind!r}: use the rendered book's")
    import matplotlib.pyplot as plt
    import numpy as np

    from .gaussian.theory import theory_1d
    from .plotting import figure, theory

    fixed = FIXED[kind]

    def show(**v):
        if kind == "mixing":
            total = v["alpha"] + v["beta"] + v["gamma"]
            if total <= 0:
                print("alpha + beta + gamma must be positive")
                return
            v = dict(v, alpha=v["alpha"] / total, beta=v["beta"] / total, gamma=v["gamma"] / total,
                     regime="mix")
        sd = gaussian_sigmas(chains=fixed["chains"], seed=fixed["seed"], **v)
        g = np.arange(sd.shape[1])
        th = theory_1d(g + 1, v["M"], estimator=v.get("estimator", "unbiased"))
        fig, ax = figure(None, height=3.6, note=f"M = {v['M']}, {sd.shape[0]} chains "
                         f"(30 of them drawn), seed {fixed['seed']}")
        ax.semilogy(g, sd[:30].T, color="C0", alpha=0.15, lw=0.8)
        ax.semilogy(g, sd.mean(0), color="C0", lw=2, label=f"mean over {sd.shape[0]} chains")
        ax.semilogy(g, np.median(sd, 0), color="C1", lw=2, label="median")
        theory(ax, g, th["sigma"], label=r"exact $E\,\sigma_n$ (replace)")
        ax.set(xlabel="generation", ylabel=r"fitted $\sigma$")
        ax.legend(loc="lower left")
        plt.show()
        plt.close(fig)

    sliders = {}
    for c in CONTROLS[kind]:
        if "choices" in c:
            sliders[c["name"]] = w.Dropdown(options=[(lab, val) for val, lab in c["choices"]],
                                            value=c["value"], description=c["name"])
        elif "values" in c:
            sliders[c["name"]] = w.SelectionSlider(options=c["values"], value=c["value"],
                                                   description=c["name"], continuous_update=False)
        else:
            make = w.IntSlider if isinstance(c["step"], int) else w.FloatSlider
            sliders[c["name"]] = make(value=c["value"], min=c["min"], max=c["max"], step=c["step"],
                                      description=c["name"], continuous_update=False)
    return w.interact(show, **sliders)
