"""Command line: ``python -m collapse_utils {list, settings, run, book, assignments}``.

    python -m collapse_utils list
    python -m collapse_utils settings EXPERIMENT [--profile P]
    python -m collapse_utils run EXPERIMENT [--profile P] [--seed S] [--out DIR] [--resume]
                                            [--SETTING VALUE ...]
    python -m collapse_utils book [--profile P] [--strict] [--path-output DIR] [--jobs N]
    python -m collapse_utils assignments [CHAPTER ...] [--out DIR] [--check]

Every setting printed by ``settings`` can be overridden on ``run`` with
``--name value`` (dashes or underscores), so any experiment runs at any size.
Bad arguments exit with status 2 and one line naming the argument and what is
allowed; a folder that cannot be written is found before any work starts.  An error of the
machine (a full disk, memory that ran out) exits with status 1 and one line naming the path
or the settings; an interrupt with status 130.  No traceback.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import tempfile
from concurrent.futures import BrokenExecutor
from pathlib import Path

from .book import build_book
from .experiments import cache_root, experiments, get_experiment, resolve_settings, run_experiment
from .profiles import PROFILES
from .settings import describe


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        raise UsageError(message)


def _base_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m collapse_utils", description=__doc__.split("\n\n")[0],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", parser_class=_Parser, metavar="{list,settings,run,book,assignments}")
    sub.required = True
    sub.add_parser("list", help="list the experiments")
    s = sub.add_parser("settings", help="print an experiment's resolved settings as JSON")
    s.add_argument("experiment")
    s.add_argument("--profile", choices=PROFILES)
    s.add_argument("--schema", action="store_true",
                   help="with each setting's allowed values and meaning")
    r = sub.add_parser("run", help="run an experiment and write DIR/metrics.json")
    r.add_argument("experiment")
    r.add_argument("--profile", choices=PROFILES)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", default=None,
                   help="folder for metrics.json (default: CACHE/EXPERIMENT/records/KEY, one per "
                        "profile, settings and seed)")
    r.add_argument("--resume", action="store_true",
                   help="reuse finished runs and continue interrupted ones after their last "
                        "finished generation (default: start afresh)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    b = sub.add_parser("book", help="build the rendered book into _build/html")
    b.add_argument("--profile", choices=PROFILES)
    b.add_argument("--strict", action="store_true", help="fail on any Sphinx warning (-W)")
    b.add_argument("--path-output", default=None,
                   help="build into DIR/_build instead of the book's own _build")
    b.add_argument("--jobs", type=int, default=None,
                   help="chapters executed at a time (default: the CPUs, at most 4)")
    a = sub.add_parser("assignments", help="write student and autograder versions of the "
                                           "chapters' graded exercises (otter-grader)")
    a.add_argument("chapters", nargs="*", metavar="CHAPTER",
                   help="chapters to write (default: all)")
    a.add_argument("--out", default="assignments", help="output folder (default: assignments)")
    a.add_argument("--check", action="store_true",
                   help="also run the reference solutions against every test")
    return p


def _split_overrides(extra: list[str]) -> dict[str, str]:
    overrides, i = {}, 0
    while i < len(extra):
        token = extra[i]
        if not token.startswith("--") or token == "--":
            raise UsageError(f"unexpected argument {token!r}; settings are given as --name value")
        key = token[2:]
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        elif i + 1 < len(extra):
            value, i = extra[i + 1], i + 2
        else:
            raise UsageError(f"argument --{key}: expected a value")
        overrides[key.replace("-", "_")] = value
    return overrides


def writable_folder(folder, name: str) -> Path:
    """``folder`` if files can be written there (or, while it is missing, in the nearest folder
    above it, where it will be made), else UsageError naming ``name``: checked before any
    work, so that no computation ends in a failed write.  Nothing is made or left behind."""
    if not str(folder).strip():
        raise UsageError(f"{name}: must be a folder; got {str(folder)!r}")
    path = Path(folder).expanduser()
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        what = "is a file" if probe == path else f"cannot be made: {probe} is a file"
        raise UsageError(f"{name}: {path} {what}; give a folder")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        raise UsageError(f"{name}: {path} cannot be written ({err.strerror} in {probe})") from None
    return path


def _cache_name() -> str:
    return "COLLAPSE_CACHE" if os.environ.get("COLLAPSE_CACHE") else \
        "the run cache (~/.cache/collapse_utils; set COLLAPSE_CACHE for another)"


def _memory_error(err: BaseException, overrides: dict) -> str:
    given = ", ".join(f"--{k} {v}" for k, v in overrides.items())
    detail = f" ({err})" if str(err) else ""
    if given:
        return f"memory ran out{detail}; smaller values of the settings given ({given}) need less"
    return f"memory ran out{detail}; a smaller profile or smaller settings need less"


def _os_error(err: OSError, command: str | None) -> str:
    text = err.strerror or str(err) or type(err).__name__
    if err.filename is not None:
        text += f": {err.filename}"
        if getattr(err, "filename2", None) is not None:
            text += f" -> {err.filename2}"
    if err.errno == errno.ENOSPC:
        text += (" (free some space; finished generations are kept, rerun with --resume)"
                 if command == "run" else " (free some space and rerun)")
    return text


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _base_parser()
    args, overrides = None, {}
    try:
        args, extra = parser.parse_known_args(argv)
        if args.command == "list":
            if extra:
                raise UsageError(f"unrecognized arguments: {' '.join(extra)}")
            from .experiments import FAMILY_MODULES, unavailable

            known = experiments()
            width = max(map(len, known), default=0)
            for name, exp in known.items():
                print(f"{name:<{width}}  {exp.summary}")
            # a family that did not load: a missing extra (the reason names the pip install)
            # is a note; anything else, or a family not installed at all, is an error
            why = unavailable()
            loaded = {exp.family.rsplit(".", 1)[-1] for exp in known.values()}
            broken = False
            for family in FAMILY_MODULES:
                if family in why:
                    extra = "pip install 'collapse_utils[" in why[family]
                    broken |= not extra
                    print(f"collapse_utils: {'note' if extra else 'error'}: {why[family]}",
                          file=sys.stderr)
                elif family not in loaded:
                    broken = True
                    print(f"collapse_utils: error: the {family} family is not installed "
                          f"(no collapse_utils.{family}: an incomplete install)", file=sys.stderr)
            return 1 if broken else 0
        if args.command == "book":
            if extra:
                raise UsageError(f"unrecognized arguments: {' '.join(extra)}")
            return build_book(args.profile, args.strict, path_output=args.path_output, jobs=args.jobs)
        if args.command == "assignments":
            if extra:
                raise UsageError(f"unrecognized arguments: {' '.join(extra)}")
            from .assignments import write_assignments

            writable_folder(args.out, "argument --out")
            write_assignments(args.chapters, args.out, check=args.check)
            return 0
        get_experiment(args.experiment)  # a bad name fails before anything else
        if args.command == "settings":
            if extra:
                raise UsageError(f"unrecognized arguments: {' '.join(extra)}")
            exp = get_experiment(args.experiment)
            if args.schema:
                print(json.dumps(describe(exp.settings, args.profile), indent=1))
            else:
                print(json.dumps(resolve_settings(exp, args.profile), indent=1))
            return 0
        if args.seed < 0:
            raise UsageError(f"argument --seed: must be a non-negative integer; got {args.seed}")
        overrides = _split_overrides(extra)
        resolve_settings(args.experiment, args.profile, overrides)   # bad settings first
        writable_folder(cache_root(), _cache_name())
        if args.out is not None:
            writable_folder(args.out, "argument --out")
        record = run_experiment(args.experiment, profile=args.profile, seed=args.seed,
                                overrides=overrides, out=args.out,
                                resume=args.resume, progress=not args.quiet)
    except (UsageError, ValueError) as err:
        print(f"collapse_utils: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args is not None and args.command == "book":
            print("collapse_utils: interrupted; the chapters executed so far are cached, "
                  "the build's processes have ended", file=sys.stderr)
        else:
            print("collapse_utils: interrupted; finished generations are saved, rerun with --resume",
                  file=sys.stderr)
        return 130
    except MemoryError as err:
        print(f"collapse_utils: error: {_memory_error(err, overrides)}", file=sys.stderr)
        return 1
    except BrokenExecutor:
        print("collapse_utils: error: a worker process died (killed, e.g. when memory ran out); "
              "finished runs are kept, rerun with --resume", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"collapse_utils: error: {_os_error(err, args and args.command)}", file=sys.stderr)
        return 1
    if record.stand_in:
        print(f"STAND-IN: {record.stand_in}")
    runs = record.data["runs"]
    gens = max(len(r["generations"]) for r in runs)
    print(f"wrote {record.path}  ({len(runs)} run{'s' * (len(runs) != 1)}, {gens} generations, "
          f"{record.data['wall_time_s']:.1f} s)")
    return 0
