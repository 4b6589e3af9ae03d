"""Where MetaLLMiX keeps its files. Every location can be overridden by an environment variable."""

from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from pathlib import Path

import platformdirs

from knowledge import __version__

APP = "metallmix"
PACKAGE_DATA = Path(__file__).resolve().parent / "data"


def home() -> Path:
    """Root for the user's MetaLLMiX state (`METALLMIX_HOME`, else the platform's user data dir)."""
    env = os.environ.get("METALLMIX_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir(APP))


def data_dir() -> Path:
    """Where named dataset sources (`medmnist:<flag>`, ...) are looked up (`METALLMIX_DATA`)."""
    env = os.environ.get("METALLMIX_DATA")
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir(APP)) / "data"


def store_path() -> Path:
    """The SQLite run store (`METALLMIX_STORE`, else `<home>/runs.sqlite`); see `store_url`."""
    env = os.environ.get("METALLMIX_STORE")
    return Path(env).expanduser() if env else home() / "runs.sqlite"


def store_url() -> str:
    """The run store to open: `METALLMIX_STORE` (a file path or a database URL such as
    `postgresql://user:password@host/db`), else `<home>/runs.sqlite`."""
    env = os.environ.get("METALLMIX_STORE")
    if env and "://" in env:
        return env
    return str(store_path())


def artifacts_dir() -> Path:
    """Fitted meta-learners, retrieval indexes and plots (`<home>/artifacts`)."""
    return home() / "artifacts"


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit when running from a checkout, e.g. `0.1.0+g1a2b3c4`."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+g{sha}" if sha else __version__
