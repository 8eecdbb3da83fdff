"""The numbers the VAE chapter (book/vae) quotes, one function per section.

Each function takes the chapter's ``vae`` record (and, for the blur control, the
:class:`BlurControl` its visible cells compute) and returns a flat dict of Python numbers, the
keys the chapter glues as ``vae_<key>``; each key is documented by one line of its docstring.
Numbers of a regime are medians over seeds (:func:`collapse_utils.vae.summary`).  Pure
computations on records: no plotting, no glue.  :func:`blur_control` alone reads data (real
MNIST, the digit reader, the saved generation-0 model), as the chapter's control does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..loop import load_generation, rng_for
from .data import load_mnist
from .experiment import data_depth, real_share
from .figures import summary
from .measure import digit_reader, latent_statistics, latent_summary, read_digits
from .model import PAPER_PARAMETERS, count_parameters, load_vae, vae_class

#: the chapter's three regimes: the protocol, 10% and 50% real digits kept
REGIMES = ("replace", "keep-real", "keep-real-50")
#: how many real digits each image of the blur control averages
BLUR_KS = (1, 2, 3, 4, 6, 8)


def _last(values) -> float:
    return float(values[-1])


def _each_run(rec, name: str) -> list:
    """Fact ``name`` of every run (a fact equal in every run is stored once, on the record)."""
    return [r["facts"][name] if name in r["facts"] else rec.facts[name] for r in rec.runs()]


def network() -> dict:
    """The admonition and "The experiment at this profile": the paper's network against the
    ``default`` one (no run).

    param_ratio: parameters of the protocol's VAE over those of the capacity-32 one
    """
    return {"param_ratio": PAPER_PARAMETERS / count_parameters(vae_class()(capacity=32))}


def experiment(rec) -> dict:
    """Section "The experiment at this profile": what each generation was fed.

    last: the last generation of the run
    n_keep: real digits a keep-real generation keeps (the real fraction of the digits)
    n_decoded: decoded images of a keep-real generation's epoch, n_real - n_keep
    real_share_g0: the smallest share of real digits at generation 0, over regimes and seeds
    real_share_gap: the largest |recorded - intended| real share after generation 0
    """
    fraction = rec.settings["real_fraction"]
    n_keep = round(rec.fact("n_real") * fraction)
    g0, gap = [], []
    for regime in rec.values("regime"):
        share = rec.metric("real_share", regime=regime)
        g0.append(share[:, 0].min())
        gap.append(np.abs(share[:, 1:] - real_share(regime, fraction)).max(initial=0.0))
    return {"last": int(rec.generations[-1]), "n_keep": int(n_keep),
            "n_decoded": int(rec.fact("n_real") - n_keep), "real_share_g0": float(min(g0)),
            "real_share_gap": float(max(gap))}


def samples(rec) -> dict:
    """Section "Samples, generation by generation": the digit readers on real digits and on the
    samples of generation 0 and the last generation (``replace``).

    solid_real: median share of solid ink of real digits
    solid_g0: the same for generation 0's samples
    solid_last: the same for the last generation's samples
    ent_real: class-mix entropy of real digits as the reader reads them, bits
    ent_g0: the same for generation 0's samples
    ent_last: the same for the last generation's samples
    sharp_real: percentage of real digits that are sharp (at least 60% solid ink)
    sharp_g0: the same for generation 0's samples
    conf_real: the reader's mean top-class probability on real digits
    conf_g0: the same on generation 0's samples
    conf_ratio: conf_g0 / conf_real
    reader_acc: the reader's accuracy on held-out real digits, percent
    recog_real: percentage of real digits the overlay reader reads as one digit
    recog_g0: the same for generation 0's samples
    recog_last: the same for the last generation's samples
    recog_ratio: recog_g0 over recog_real
    """
    R = summary(rec, "replace")
    return {
        "solid_real": float(rec.fact("real_solid_ink")),
        "solid_g0": float(R["solid_ink"][0]),
        "solid_last": _last(R["solid_ink"]),
        "ent_real": float(rec.fact("real_class_entropy")),
        "ent_g0": float(R["entropy"][0]),
        "ent_last": _last(R["entropy"]),
        "sharp_real": float(100 * rec.fact("real_sharp_share")),
        "sharp_g0": float(100 * R["sharp_share"][0]),
        "conf_real": float(rec.fact("real_reader_confidence")),
        "conf_g0": float(R["confidence"][0]),
        "conf_ratio": float(R["confidence"][0] / rec.fact("real_reader_confidence")),
        "reader_acc": float(100 * rec.fact("reader_accuracy")),
        "recog_real": float(100 * rec.fact("real_recognisable")),
        "recog_g0": float(100 * R["recognisable"][0]),
        "recog_last": float(100 * R["recognisable"][-1]),
        "recog_ratio": float(R["recognisable"][0] / rec.fact("real_recognisable")),
    }


def latent(rec) -> dict:
    """Section "The protocol's number, against the public notebook": the generation-0
    encoder's statistics of each regime's samples (where the run stops before generation 5,
    its last generation stands in for the later of 1 and 5).

    std_real: pooled latent std of real digits (the median over runs)
    std_g0: replace: pooled latent std of generation 0's samples
    std_g1: the same at generation 1
    std_g5: the same at generation 5
    std_last: the same at the last generation
    std_drop: std_g1 - std_g5, the fall the public notebook reports as about 0.24
    spread_g0: replace: spread across samples (per-dimension std, averaged) at generation 0
    spread_last: the same at the last generation
    k10_spread_g0: keep 10% real: spread across samples at generation 0 (shared by the regimes)
    k10_std_last: keep 10% real: pooled latent std at the last generation
    k10_spread_last: keep 10% real: spread across samples at the last generation
    k50_std_last: keep 50% real: pooled latent std at the last generation
    k50_spread_last: keep 50% real: spread across samples at the last generation
    """
    last = int(rec.generations[-1])
    R, K10, K50 = (summary(rec, r) for r in REGIMES)
    return {
        "std_real": float(np.median(_each_run(rec, "real_latent_std"))),
        "std_g0": float(R["std"][0]),
        "std_g1": float(R["std"][min(1, last)]),
        "std_g5": float(R["std"][min(5, last)]),
        "std_last": _last(R["std"]),
        "std_drop": float(R["std"][min(1, last)] - R["std"][min(5, last)]),
        "spread_g0": float(R["spread"][0]),
        "spread_last": _last(R["spread"]),
        "k10_spread_g0": float(K10["spread"][0]),
        "k10_std_last": _last(K10["std"]),
        "k10_spread_last": _last(K10["spread"]),
        "k50_std_last": _last(K50["std"]),
        "k50_spread_last": _last(K50["spread"]),
    }


def reader(rec) -> dict:
    """Section "Blur or lost variety? Reading the samples": the reader figure's last generation.

    sharp_last: replace: percentage of sharp samples at the last generation
    sharp_after1: replace: the largest percentage of sharp samples from generation 2 on
    top_share: replace: percentage of the last generation's samples read as its commonest digit
    top_digit: that digit
    k10_ent_last: keep 10% real: class-mix entropy at the last generation, bits
    k10_solid_last: keep 10% real: share of solid ink at the last generation
    k50_ent_last: keep 50% real: class-mix entropy at the last generation, bits
    k50_solid_last: keep 50% real: share of solid ink at the last generation
    """
    R, K10, K50 = (summary(rec, r) for r in REGIMES)
    return {
        "sharp_last": float(100 * R["sharp_share"][-1]),
        "sharp_after1": float(100 * np.max(R["sharp_share"][2:], initial=0.0)),
        "top_share": float(100 * R["top_share_last"]),
        "top_digit": int(R["top_digit_last"]),
        "k10_ent_last": _last(K10["entropy"]),
        "k10_solid_last": _last(K10["solid_ink"]),
        "k50_ent_last": _last(K50["entropy"]),
        "k50_solid_last": _last(K50["solid_ink"]),
    }


@dataclass(frozen=True)
class BlurControl:
    """Blur without lost variety: images that average ``k`` random real digits, for each ``k``
    of ``ks`` (600 images to read, 100 to encode), as the digit reader and the generation-0
    encoder see them.  Arrays run over ``ks``."""

    ks: tuple
    solid: np.ndarray     # median share of solid ink
    entropy: np.ndarray   # class-mix entropy, bits
    spread: np.ndarray    # spread across samples of the generation-0 encoder's latent means

    def at_solid_ink(self, solid_ink, values) -> np.ndarray:
        """``values`` (an array over ``ks``) interpolated at the shares of solid ink
        ``solid_ink``: what blur alone gives at that sharpness."""
        order = np.argsort(self.solid)
        return np.interp(solid_ink, self.solid[order], np.asarray(values)[order])


def blur_control(rec, ks=BLUR_KS) -> BlurControl:
    """Averages of ``k`` random real digits (a fixed permutation of MNIST), read by the run's
    digit reader and encoded by the saved generation-0 model of ``replace``, first seed."""
    import torch

    classifier, _ = digit_reader(rec.settings["reader_images"])
    digits = load_mnist().images / 255.0
    pick = rng_for(0, "reference", 1).permutation(len(digits))
    control = [
        read_digits(classifier, digits[pick[: 600 * k]].reshape(600, k, -1).mean(axis=1))
        for k in ks
    ]
    first = load_generation(
        rec.run_dir(regime="replace", seed=rec.values("seed")[0]), 0, load_model=load_vae
    )
    spread = []
    for k in ks:
        x = digits[pick[: 100 * k]].reshape(100, k, 1, 28, 28).mean(axis=1)
        mu = latent_statistics(first, torch.tensor(x).float())
        spread.append(latent_summary(mu)["latent_spread"])
    return BlurControl(tuple(ks), np.array([c["solid_ink"] for c in control]),
                       np.array([c["class_entropy"] for c in control]), np.array(spread))


def blur(rec, control: BlurControl) -> dict:
    """Section "Blur or lost variety? Reading the samples", the control: what blur alone does
    to the class mix and to the protocol's ruler (``control`` from :func:`blur_control`).

    ent_ctrl: class-mix entropy of single real digits, bits
    solid_avg2: median share of solid ink of averages of two real digits
    ent_avg2: their class-mix entropy, bits
    blur_ent_last: the entropy of averages as solid as replace's last generation, bits
    ent_lost: ent_ctrl minus replace's class-mix entropy at the last generation
    ent_by_blur: ent_ctrl minus blur_ent_last, what blur alone would cost
    ctrl_spread1: spread across samples of single real digits (generation-0 encoder)
    ctrl_spread2: the same for averages of two
    blur_spread_last: the spread of averages as solid as replace's last generation
    """
    R = summary(rec, "replace")
    blur_entropy = control.at_solid_ink(R["solid_ink"], control.entropy)
    blur_spread = control.at_solid_ink(R["solid_ink"], control.spread)
    return {
        "ent_ctrl": float(control.entropy[0]),
        "solid_avg2": float(control.solid[1]),
        "ent_avg2": float(control.entropy[1]),
        "blur_ent_last": _last(blur_entropy),
        "ent_lost": float(control.entropy[0] - R["entropy"][-1]),
        "ent_by_blur": float(control.entropy[0] - blur_entropy[-1]),
        "ctrl_spread1": float(control.spread[0]),
        "ctrl_spread2": float(control.spread[1]),
        "blur_spread_last": _last(blur_spread),
    }


def depth() -> dict:
    """Section "Why a tenth of real data does not help here": the data depth d_i (no run).

    depth10_g5: d_5, the mean number of fits behind generation 5's data with 10% real kept
    """
    return {"depth10_g5": float(data_depth(0.1, [5])[0])}
