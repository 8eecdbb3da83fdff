"""The curation chapter's figure and numbers of the VAE under a digit-reading verifier."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..loop import rng_for
from ..plotting import REGIME_COLORS, figure, figure_legend
from .data import stand_in_label


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
    * ``ink_start_T``, ``ink_end_T``: mean over seeds of the median solid-ink share (sharpness,
      :func:`~collapse_utils.vae.measure.solid_ink`) at generation 0 and the last;
    * ``real_rec``, ``real_ent``, ``real_ink``: the readers' values on held-out real digits;
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
        ink = rec.metric("solid_ink", verifier_digits=digits).mean(axis=0)
        mean_r = r.mean(axis=0)
        out.update({f"rec_start_{t}": float(mean_r[0]), f"rec_end_{t}": float(mean_r[-1]),
                    f"rec_best_{t}": float(mean_r.max()), f"rec_best_gen_{t}": int(mean_r.argmax()),
                    f"rec_end_spread_{t}": float(np.ptp(r[:, -1])),
                    f"ent_start_{t}": float(e[:, 0].mean()), f"ent_end_{t}": float(e[:, -1].mean()),
                    f"ent_end_spread_{t}": float(np.ptp(e[:, -1])),
                    f"ent_mean_{t}": float(e[:, 1:].mean()) if e.shape[1] > 1 else float(e.mean()),
                    f"top_share_{t}": float(np.mean([max(h) / sum(h) for h in hist[:, -1]])),
                    f"ink_start_{t}": float(ink[0]), f"ink_end_{t}": float(ink[-1])})
        if digits:
            seed = rec.values("seed")[0]
            out[f"fav_{t}"] = float(rec.fact("favourite_entropy", verifier_digits=digits, seed=seed))
            out[f"acc_{t}"] = float(rec.fact("verifier_accuracy", verifier_digits=digits, seed=seed))
    one = dict(verifier_digits=rec.values("verifier_digits")[0], seed=rec.values("seed")[0])
    out["real_rec"] = float(rec.fact("real_recognisable", **one))
    out["real_ent"] = float(rec.fact("real_class_entropy", **one))
    out["real_ink"] = real_solid_ink(rec)
    return out


def real_solid_ink(rec) -> float:
    """The median solid-ink share of held-out real digits, as the run's digit reader measures
    them (:func:`~collapse_utils.vae.measure.digit_reader`)."""
    from .data import load_mnist
    from .measure import digit_reader

    n = min(int(rec.settings["reader_images"]), len(load_mnist()) - 100)
    return float(digit_reader(n)[1]["real_solid_ink"])


def plot_vae_verifier(rec):
    """Three panels against the generation, one colour per verifier (the real digits it learned
    from; blues, darker for more digits), vermillion without one: (a) the share of samples the
    overlay reader recognises, (b) the median share of their ink that is solid (sharpness),
    (c) the digit reader's class entropy.  Mean over seeds (line) and their range (band); grey
    dotted: held-out real digits.  Returns the figure."""
    S = rec.settings
    g = np.asarray(rec.generations)
    verifiers = [d for d in rec.values("verifier_digits") if d]
    # blues, darker for a verifier of more digits: apart from the vermillion of no verifier
    colors = dict(zip(verifiers, plt.get_cmap("Blues")(np.linspace(0.5, 0.95, len(verifiers)))))
    colors[0] = REGIME_COLORS["replace"]
    one = dict(verifier_digits=rec.values("verifier_digits")[0], seed=rec.values("seed")[0])
    seeds = f"{S['seeds']} seed{'s' if S['seeds'] != 1 else ''}"
    fig, axes = figure(rec, grid=(1, 3), height=2.9, stand_in=stand_in_label(rec.stand_in),
                       note=f"{S['n_real']} real digits at generation 0, then the best "
                            f"{100 * S['keep']:g}% of decoded images, {S['samples']} per "
                            f"generation; mean over {seeds}, band: their range")
    axes = axes[0]
    panels = ((axes[0], "recognisable", rec.fact("real_recognisable", **one), "recognisable share",
               "(a) what it checks", (0, 1.02)),
              (axes[1], "solid_ink", real_solid_ink(rec), "solid ink (median share)",
               "(b) sharpness", (0, 1.02)),
              (axes[2], "class_entropy", rec.fact("real_class_entropy", **one),
               "class entropy (bits)", "(c) variety", (0, np.log2(10) + 0.15)))
    for ax, metric, real, label, title, ylim in panels:
        for digits in rec.values("verifier_digits"):
            m = rec.metric(metric, verifier_digits=digits)
            name = "no verifier" if digits == 0 else f"verifier of {digits:,} digits"
            ax.fill_between(g, m.min(axis=0), m.max(axis=0), color=colors[digits], alpha=0.25,
                            linewidth=0)
            ax.plot(g, m.mean(axis=0), color=colors[digits], marker="o", markersize=3, label=name)
        ax.axhline(real, color=REGIME_COLORS["real"], linestyle=":", linewidth=1.2,
                   label="real digits")
        ax.set_xlabel("generation")
        ax.set_ylabel(label)
        ax.set_xticks(g)
        ax.set_ylim(*ylim)
        ax.set_title(title)
    figure_legend(fig, axes, ncol=4)
    return fig


def verifier_samples(rec, digits: int, generation: int, n: int = 12, seed: int | None = None):
    """n images (n, 28, 28) decoded by the saved ``generation`` of the chain of the verifier of
    ``digits`` real digits (0: none), from the same latents (the run's ``"figure"`` stream)."""
    import torch

    from ..loop import load_generation, seed_for
    from .model import load_vae

    seed = rec.values("seed")[0] if seed is None else seed
    model = load_generation(rec.run_dir(verifier_digits=digits, seed=seed), generation,
                            load_model=load_vae)
    gen = torch.Generator().manual_seed(seed_for(seed, "figure"))
    with torch.no_grad():
        return model.sample(n, generator=gen).squeeze(1).float().cpu().numpy()


def plot_verifier_samples(rec, n: int = 12):
    """One row of images each: real digits, generation 0 (shared by every chain), and the last
    generation of each chain (seed 0), decoded from the same latents.  Returns the figure."""
    from .data import load_mnist

    G = int(rec.generations[-1])
    data = load_mnist()
    pick = rng_for(rec.values("seed")[0], "figure", 1).choice(len(data), n, replace=False)
    rows = [("real digits", data.images[pick] / 255.0),
            ("generation 0", verifier_samples(rec, rec.values("verifier_digits")[0], 0, n))]
    for digits in rec.values("verifier_digits"):
        name = "no verifier" if digits == 0 else f"verifier of {digits:,}"
        rows.append((f"{name}, gen. {G}", verifier_samples(rec, digits, G, n)))
    fig, axes = figure(rec, grid=(len(rows), 1), height=0.62,
                       stand_in=stand_in_label(rec.stand_in),
                       note=f"the same {n} latents in every row, seed {rec.values('seed')[0]}")
    for ax, (label, images) in zip(axes[:, 0], rows):
        ax.imshow(np.concatenate(list(images), axis=1), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
    return fig
