"""Test-session defaults: the smoke profile and offline Hugging Face, unless set already.

At the repository root, so it applies to tests/ and to the notebooks in book/ alike.

Notebooks run by nbmake inherit this environment, so `pytest` runs every chapter
at the smoke profile.  Runs write their caches into a throwaway folder.
"""
import os
import tempfile

os.environ.setdefault("COLLAPSE_PROFILE", "smoke")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("COLLAPSE_PROGRESS", "off")  # no widgets in batch runs (nbclient#312)
# one throwaway cache per process, unless the user set one: pytest-xdist's workers inherit
# the controller's environment, and two workers must not write one run's folder at once
_process = os.environ.get("PYTEST_XDIST_WORKER", "main")
if os.environ.get("COLLAPSE_CACHE_OWNER", _process) != _process or "COLLAPSE_CACHE" not in os.environ:
    os.environ["COLLAPSE_CACHE"] = tempfile.mkdtemp(prefix="collapse-cache-")
    os.environ["COLLAPSE_CACHE_OWNER"] = _process

