"""The curation chapter's figure and numbers of the VAE under a digit-reading verifier."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..plotting import REGIME_COLORS, profile_note


def _tag(digits) -> str:
    return "none" if int(digits) == 0 else f"v{int(digits)}"


def verifier_report(rec) -> dict:
    """The numbers the chapter quotes, per verifier (``v100``, ``v2500``, ...; ``none`` without one):

    * ``rec_start_T``, ``rec_end_T``: mean recognisable share at generation 0 and the last;
    * ``rec_best_T``, ``rec_best_gen_T``: its highest mean over the generations, and where;
    * ``rec_end_spread_T``: the range over seeds at the last generation;
    * ``ent_start_T``, ``ent_end_T``: mean class entropy (bits) at generation 0 and the last;
    * ``ent_end_spread_T``: the range over seeds at the last generation;
    * ``ent_mean_T``: the mean class entropy over generations 1..G and the seeds;
    * ``top_share_T``: the share of the most frequent digit at the last generation (mean over seeds);
    * ``fav_T``: the class entropy of the real digits the verifier would keep; ``acc_T``: its
      accuracy on real digits;
    * ``real_rec``, ``real_ent``: the readers' values on held-out real digits;
    * ``G``, ``n_real``, ``samples``, ``keep_pct``, ``seeds``: the run's sizes.
    """
    S = rec.settings
    out = {"G": int(rec.generations[-1]), "n_real": int(S["n_real"]), "samples": int(S["samples"]),
           "keep_pct": 100 * float(S["keep"]), "seeds": int(S["seeds"])}
    for digits in rec.values("verifier_digits"):
        t = _tag(digits)
        r = rec.metric("recognisable", verifier_digits=digits)
        e = rec.metric("class_entropy", verifier_digits=digits)
        hist = rec.metric("class_hist", verifier_digits=digits)
        mean_r = r.mean(axis=0)
        out.update({f"rec_start_{t}": float(mean_r[0]), f"rec_end_{t}": float(mean_r[-1]),
                    f"rec_best_{t}": float(mean_r.max()), f"rec_best_gen_{t}": int(mean_r.argmax()),
                    f"rec_end_spread_{t}": float(np.ptp(r[:, -1])),
                    f"ent_start_{t}": float(e[:, 0].mean()), f"ent_end_{t}": float(e[:, -1].mean()),
                    f"ent_end_spread_{t}": float(np.ptp(e[:, -1])),
                    f"ent_mean_{t}": float(e[:, 1:].mean()) if e.shape[1] > 1 else float(e.mean()),
                    f"top_share_{t}": float(np.mean([max(h) / sum(h) for h in hist[:, -1]]))})
        if digits:
            seed = rec.values("seed")[0]
            out[f"fav_{t}"] = float(rec.fact("favourite_entropy", verifier_digits=digits, seed=seed))
            out[f"acc_{t}"] = float(rec.fact("verifier_accuracy", verifier_digits=digits, seed=seed))
    one = dict(verifier_digits=rec.values("verifier_digits")[0], seed=rec.values("seed")[0])
    out["real_rec"] = float(rec.fact("real_recognisable", **one))
    out["real_ent"] = float(rec.fact("real_class_entropy", **one))
    return out


def plot_vae_verifier(rec):
    """Two panels against the generation, one colour per verifier (the real digits it learned
    from), red without one: (a) the share of samples the overlay reader recognises, (b) the
    digit reader's class entropy.  Mean over seeds (line) and their range (band); grey dotted:
    held-out real digits.  Returns the figure."""
    S = rec.settings
    g = np.asarray(rec.generations)
    verifiers = [d for d in rec.values("verifier_digits") if d]
    colors = dict(zip(verifiers, plt.get_cmap("viridis")(np.linspace(0.15, 0.8, len(verifiers)))))
    colors[0] = REGIME_COLORS["replace"]
    one = dict(verifier_digits=rec.values("verifier_digits")[0], seed=rec.values("seed")[0])
    fig, axes = plt.subplots(1, 2, figsize=(6.8, 3.3), constrained_layout=True)
    for ax, metric, real, label in ((axes[0], "recognisable", rec.fact("real_recognisable", **one),
                                     "recognisable share"),
                                    (axes[1], "class_entropy", rec.fact("real_class_entropy", **one),
                                     "class entropy (bits)")):
        for digits in rec.values("verifier_digits"):
            m = rec.metric(metric, verifier_digits=digits)
            name = "no verifier" if digits == 0 else f"verifier of {digits:,} digits"
            ax.fill_between(g, m.min(axis=0), m.max(axis=0), color=colors[digits], alpha=0.25,
                            linewidth=0)
            ax.plot(g, m.mean(axis=0), color=colors[digits], marker="o", markersize=3, label=name)
        ax.axhline(real, color="0.4", linestyle=":", linewidth=1.2, label="real digits")
        ax.set_xlabel("generation")
        ax.set_ylabel(label)
        ax.set_xticks(g)
    axes[0].set_ylim(0, 1)
    axes[1].set_ylim(0, np.log2(10) + 0.15)
    axes[0].set_title("(a) what the verifier checks", fontsize=10)
    axes[1].set_title("(b) what it does not", fontsize=10)
    axes[0].legend(fontsize=8, loc="lower left")
    axes[1].legend(fontsize=8, loc="lower left", handles=axes[1].get_lines()[-1:])
    profile_note(fig, rec.profile, f"{S['n_real']} real digits at generation 0, then the best "
                 f"{100 * S['keep']:g}% of decoded images, {S['samples']} per generation; "
                 f"{S['seeds']} seeds")
    fig.get_layout_engine().set(rect=(0, 0.06, 1, 0.94))
    return fig
