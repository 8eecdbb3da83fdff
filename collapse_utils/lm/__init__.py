"""A pretrained language model fine-tuned on its own output (Shumailov et al. 2024, Fig. 1).

One file per job:

    data         corpora as rows, rows as 64-token blocks
    files        weights saved quietly, folders replaced whole (imports no other module here)
    backends     the model and text (hub, local, stand-in, tiny), device and precision
    speed        matrix-product rates at the model's shapes; the CPU precision they choose
    train        fine-tuning one generation (best epoch on real validation data)
    generate     beam search, greedy decoding, nucleus sampling: 64 new tokens per block
    evaluate     perplexities, Fig. 1b/1c histograms, tail measures of the text
    verify       the verify regime's verifier: generation 0's perplexity of each block
    store        saving and loading one generation; the shared generation-0 folder
    run          one run as an object whose methods are its steps (fit, sample, measure)
    experiment   the settings schema, ``run_lm``, ``register``
    report       the numbers the chapter quotes: report, findings, protocol, what ran
    figures      the chapter's figures and the recorded run, read from records
"""
import importlib.util as _util

for _dep in ("torch", "transformers"):  # imported lazily; missing, the core names the extra
    if _util.find_spec(_dep) is None:
        raise ImportError(f"the lm family needs {_dep}", name=_dep)

from . import experiment  # noqa: E402,F401  (registers "lm")
from . import report  # noqa: E402,F401
from .backends import (BACKENDS, HUB_MODEL, STAND_IN_LABEL, STAND_IN_WHEEL, Backend,
                       choose_backend, load_backend, load_local, load_stand_in, stand_in_file)
from .data import (PYTHON_DOCS, SPLITS, WIKITEXT2_BLOCKS, blocks_from_token_lists, folder_rows,
                   python_docs_rows, subset_blocks, tokenize_rows)
from .evaluate import (distinct_share, histogram_overlap, perplexity, rare_token_types,
                       sequence_losses, sequence_perplexities, tail_measures)
from .experiment import CHAPTER, PAPER, REGIMES, SETTINGS, chapter_workload, paper_epochs, run_lm
from .figures import (FIG1_GENERATIONS, baseline, continuation_table, paper_comparison,
                      plot_generated_perplexity, plot_histograms_3d, plot_protocol,
                      plot_readouts, plot_tails, plot_test_perplexity, short_label)
from .generate import DECODINGS, beam_search, generate_continuations, nucleus_sample
from .store import FittedLM, load_fitted, save_fitted
from .train import fine_tune
from .verify import PerplexityVerifier, perplexity_band
