"""Build the rendered book: run the chapters side by side where that pays, then ``jupyter-book build``.

Jupyter Book 1 executes notebooks one after another, so a build leaves a core idle through
every chapter that runs on one core.  ``build_book`` first runs each chapter that
jupyter-cache does not hold yet (with jupyter-cache's own worker, into the cache the build
reads: ``<out>/_build/.jupyter_cache``) in two phases: first every chapter but those in
``ALONE``, ``jobs`` at a time, the longest first (``LONGEST_FIRST``, so that the phase does
not end with one long chapter running by itself); then the chapters in ``ALONE``, one after
another with nothing beside them.  Measured on the older of the README's 2-core machines:
two one-core chapters side by side each run at the speed they have alone, and chapters whose processes
each run one thread (the sweeps' process pools, the VAE's one-thread torch runs) share the
cores in proportion.  The language model is the exception: its beam search waits on memory,
not on the cores (one torch thread decodes 8 blocks in 31.9 s, two in 31.4 s), so beside other
chapters it slows more than its share of the cores explains: at one thread, on a core of its
own, with the others beside it at nice 10, it fine-tuned in 41-46 s a generation instead of 17
and decoded in 54-60 s instead of 30.  ``jupyter-book build`` then finds each notebook's outputs in the
cache.  A chapter that fails is left out of the cache: the build runs it once more and
reports the error as any build does.
"""
from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import yaml

from .experiments import source_digest
from .profiles import current_profile

#: the chapters that run last, alone: torch on every core in one process (the language model)
ALONE = ("book/lm", "book/claims")
#: the other chapters' order, longest first at ``default`` (the rest follow in the toc's order)
LONGEST_FIRST = ("book/vae", "book/curation", "book/definitions", "book/gmm", "book/gaussian",
                 "book/beyond", "book/discrete")
#: the file that marks a ``_build`` as made by :func:`build_book` (it holds the profile and code)
MARKER = ".profile"
#: seconds a process gets to end after it is asked to (SIGTERM, or a worker's stop signal)
#: before it is killed
GRACE_S = 5.0


def toc_entries(book_root: Path) -> list[str]:
    """Every ``root`` and ``file`` entry of ``_toc.yml`` (pages without their suffix), in its order."""
    entries: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            entries.extend(str(node[k]) for k in ("root", "file") if k in node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load((book_root / "_toc.yml").read_text()))
    return entries


def toc_notebooks(book_root: Path) -> list[Path]:
    """The notebooks that ``_toc.yml`` lists, in its order."""
    paths = [book_root / f"{e}.ipynb" for e in toc_entries(book_root)]
    return [p for p in paths if p.is_file()]


# ----------------------------------------------------------------------------- child processes
#: the signal that stops a chapter worker: nbclient takes SIGINT and SIGTERM while a notebook
#: runs (it shuts the kernel down and the worker goes on to the next chapter)
STOP_WORKER = getattr(signal, "SIGUSR1", signal.SIGTERM)


def end_with_parent(parent: int, sig: int = signal.SIGTERM) -> None:
    """Have Linux send ``sig`` to this process when the thread that started it ends
    (``prctl(PR_SET_PDEATHSIG)``), the backstop for a parent killed with kill -9; if
    ``parent`` died already, send it now.  Elsewhere, nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(sig), 0, 0, 0)   # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os.kill(os.getpid(), sig)


def end_children(keep: frozenset[int] = frozenset(), stop: int = signal.SIGTERM,
                 grace: float = GRACE_S) -> None:
    """End every process this one started but those in ``keep``, and everything they started:
    signal ``stop`` to the children first (so that each can end its own), then SIGTERM to
    what is left of their descendants; SIGKILL to what is left of each wave ``grace`` s later."""
    try:
        import psutil   # a dependency of ipykernel, which every build needs
    except ImportError:
        import multiprocessing

        for child in multiprocessing.active_children():
            if child.pid not in keep:
                child.kill()
        return
    children, below = [], []
    for child in psutil.Process().children():
        if child.pid not in keep:
            with contextlib.suppress(psutil.Error):
                below += child.children(recursive=True)
                children.append(child)
    for wave, sig in ((children, stop), (below, signal.SIGTERM)):
        for proc in wave:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
        _, alive = psutil.wait_procs(wave, timeout=grace)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(alive, timeout=grace)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def children_end_with_us(stop: int = signal.SIGTERM):
    """SIGTERM raises KeyboardInterrupt inside (as SIGINT does, in the main thread); on any
    exception, the processes started inside end (:func:`end_children` with ``stop``) before
    it propagates.  Yields the function that ends them, for a block that must end them sooner."""
    try:
        import psutil

        keep = frozenset(p.pid for p in psutil.Process().children())
    except ImportError:
        keep = frozenset()
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if main else None
    try:
        yield lambda: end_children(keep, stop)
    except BaseException:
        end_children(keep, stop)
        raise
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _stop_worker(signum, frame):
    end_children(grace=GRACE_S / 2)      # the chapter's kernel and what it started
    os._exit(128 + signum)


def _start_worker(env: dict[str, str], parent: int) -> None:
    """A chapter worker: the build's environment, a process group of its own (a Ctrl-C in the
    terminal reaches the build, which ends the workers, not nbclient's handler in each), and
    :data:`STOP_WORKER`, also sent when the build dies, ends its kernel, then itself."""
    os.environ.update(env)
    with contextlib.suppress(OSError, AttributeError):
        os.setpgid(0, 0)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)   # not the build's handler, inherited by fork
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(STOP_WORKER, _stop_worker)
    end_with_parent(parent, STOP_WORKER)


def _execute(cache_path: str, pk: int, uri: str, timeout: int, allow_errors: bool) -> tuple[str, bool, float]:
    from jupyter_cache import get_cache
    from jupyter_cache.executors.basic import ExecutionWorkerLocalMProc, ProcessData

    start = time.perf_counter()
    status, _ = ExecutionWorkerLocalMProc()(ProcessData(pk, uri, get_cache(cache_path), timeout, allow_errors))
    return uri, status == 0, time.perf_counter() - start


def execute_chapters(book_root: Path, cache_path: Path, jobs: int, env: dict[str, str]) -> list[str]:
    """Run the chapters whose outputs jupyter-cache lacks, in the two phases of the module's
    docstring (all one after another when ``jobs`` is 1); return those that failed."""
    from jupyter_cache import get_cache
    import nbformat

    execute = (yaml.safe_load((book_root / "_config.yml").read_text()) or {}).get("execute", {})
    if execute.get("execute_notebooks", "auto") != "cache":
        return []
    excluded = execute.get("exclude_patterns") or []
    cache = get_cache(str(cache_path))
    todo = {}                                          # "book/x" -> its record in the cache's project
    for path in toc_notebooks(book_root):
        rel = path.relative_to(book_root).as_posix()
        if any(fnmatch.fnmatch(rel, pat) for pat in excluded):
            continue
        try:
            cache.match_cache_notebook(nbformat.read(path, nbformat.NO_CONVERT))
            continue                                   # outputs already cached
        except KeyError:
            pass
        todo[rel.removesuffix(".ipynb")] = cache.add_nb_to_project(str(path))
    alone = [todo.pop(name) for name in ALONE if name in todo]
    first = [todo.pop(name) for name in LONGEST_FIRST if name in todo]
    shared = first + list(todo.values())
    if not alone + shared:
        return []
    timeout, allow_errors = int(execute.get("timeout", 30)), bool(execute.get("allow_errors", False))
    phases = [(shared, jobs), (alone, 1)]
    print(f"executing {len(alone + shared)} chapter(s): {len(shared)} {jobs} at a time, then "
          f"{len(alone)} alone", flush=True)
    failed, start = [], time.perf_counter()
    for records, workers in phases:
        if not records:
            continue
        with children_end_with_us(STOP_WORKER) as end_ours, ProcessPoolExecutor(
                workers, initializer=_start_worker, initargs=(env, os.getpid())) as pool:
            futures = [pool.submit(_execute, str(cache_path), r.pk, r.uri, timeout, allow_errors)
                       for r in records]
            try:
                for future in as_completed(futures):
                    uri, ok, seconds = future.result()
                    name = Path(uri).relative_to(book_root).as_posix()
                    print(f"  {name}: {'executed' if ok else 'FAILED (the build runs it again and reports it)'}"
                          f" in {seconds:.0f} s (done at {time.perf_counter() - start:.0f} s)", flush=True)
                    if not ok:
                        failed.append(name)
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                end_ours()       # now: leaving the pool's block would wait for the running chapters
                raise
    return failed


def claim_build(build: Path, key: str) -> None:
    """Make ``build`` the build folder of ``key`` (profile and code): one with :data:`MARKER`
    holding another key is emptied; one without it is used only when empty, else ValueError
    naming ``--path-output``, and nothing in it is touched."""
    if build.is_symlink() or (build.exists() and not build.is_dir()):
        raise ValueError(f"argument --path-output: {build} is a file or a link, not a folder the "
                         f"build made; give a DIR whose _build is one or does not exist")
    stamp = build / MARKER
    if build.is_dir():
        if stamp.is_file() and not stamp.is_symlink():
            if stamp.read_text().strip() != key:
                shutil.rmtree(build)
        elif any(build.iterdir()):
            raise ValueError(f"argument --path-output: {build} was not made by `collapse_utils book` "
                             f"(it has no {MARKER}), so the build leaves it alone: give another DIR, "
                             f"or remove {build} yourself")
    build.mkdir(parents=True, exist_ok=True)
    stamp.write_text(key)


def build_book(profile: str | None = None, strict: bool = False, root: str | None = None,
               path_output: str | None = None, jobs: int | None = None) -> int:
    """Build the book with ``jupyter-book build`` at ``profile``; return its exit status.

    Notebook outputs are cached by jupyter-cache, keyed by the notebooks' code but
    neither by the profile nor by collapse_utils' code, so a build at another
    profile, or after the package changed, starts from a clean ``_build`` (both
    are recorded in ``_build/.profile``, the marker of :func:`claim_build`).  The chapters
    run ``jobs`` at a time but for the language model (default: the number of CPUs, at most
    4; see the module's docstring) before the build reads them.
    """
    profile = current_profile(profile)
    jobs = min(4, os.cpu_count() or 1) if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"argument --jobs: must be a positive integer; got {jobs}")
    here = Path(root or os.getcwd()).resolve()
    book_root = next((d for d in (here, *here.parents) if (d / "_config.yml").is_file()), None)
    if book_root is None:
        raise ValueError(f"no _config.yml in {here} or above: run this in the book's repository")
    if path_output is not None and not str(path_output).strip():
        raise ValueError("argument --path-output: must be a folder; got ''")
    out = Path(path_output).expanduser().resolve() if path_output else book_root
    if out.exists() and not out.is_dir():
        raise ValueError(f"argument --path-output: {out} is a file; give a folder (the build "
                         f"goes into DIR/_build)")
    build = out / "_build"
    claim_build(build, f"{profile} {source_digest()}")
    # no progress bars: widgets can stall nbclient (jupyter/nbclient#312), and a widget in a page
    # fetches its script from a CDN (TQDM_DISABLE, read when a kernel first imports tqdm,
    # covers other libraries' bars)
    env = {**os.environ, "COLLAPSE_PROFILE": profile, "COLLAPSE_PROGRESS": "off", "TQDM_DISABLE": "1"}
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(book_root)]
    if path_output:
        cmd += ["--path-output", str(out)]
    if strict:
        cmd += ["-W", "--keep-going"]
    print(f"building the book at profile '{profile}': {' '.join(cmd)}", flush=True)
    with children_end_with_us():
        execute_chapters(book_root, build / ".jupyter_cache", jobs, env)
        parent = os.getpid()
        return subprocess.Popen(cmd, env=env, preexec_fn=lambda: end_with_parent(parent)).wait()
