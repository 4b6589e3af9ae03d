"""The web app (`metallmix ui`, Hugging Face Spaces `app.py`): chat with the advisor beside its evidence.

Left: the conversation (one advisor thread per browser session), streamed: the steps of each turn
("extracting traits", "ranking configs", ... from `Session.stream_turn`) appear live in a
"thought" message that collapses when the turn is over, the answer draft is written out as the LLM
produces it and is replaced by the grounded reply when the grounding check refused it; below, a
dataset upload (.npz or .zip of class folders).
Right, filled in as soon as the advisor knows them (before its answer is written): the traits
known so far (editable; "Recommend from these traits" needs no LLM), the recommendation card, the
SHAP waterfall of the pick, the similar past runs, the accuracy/time Pareto plot, and a "Grade"
button running the judge.

Uploads: each browser session's files land in `uploads/<thread>/`, which only that session's
handlers may read (`AdvisorApp.session_roots`, a per-context data root, never a process-wide one).
An upload is refused, leaving nothing on disk, over `UPLOAD_LIMIT_BYTES` (also Gradio's
`max_file_size`) or, for a .zip, over the `UNZIP_MAX_*` limits on entries and unpacked bytes
(checked on the listing before anything is written, and counted again while unpacking); links and
encrypted entries are refused, dot-named and `__MACOSX` entries skipped. A session's uploads are
deleted when Gradio drops the session, when the app closes, and after `UPLOAD_MAX_AGE_S`.

The handlers are methods of `AdvisorApp` taking and returning plain values (`chat_stream` and
`upload_stream` are generators; `chat` and `upload` return their last value), so tests call them
directly; `build_app` only wires them to Gradio components.

Modules: `ui.uploads` (limits, archive checks, unpacking), `ui.tables` (tables, Pareto plot),
`ui.turnview` (a streamed turn's messages), `ui.advisor` (`AdvisorApp`), `ui.layout`
(`build_app`). Every name is re-exported here; patch a name in the module that defines it.
"""

from __future__ import annotations

# ruff: noqa: F401 - the names below are re-exported (`from ui.app import X`)
from ui.advisor import AdvisorApp, PanelOut
from ui.layout import _limit_uploads, build_app
from ui.tables import (
    RUN_COLUMNS,
    TRAIT_COLUMNS,
    _empty_runs,
    plot_pareto,
    runs_table,
    trait_rows,
    traits_from_rows,
)
from ui.turnview import History, TurnView, _children, _last, _skip, _unchanged
from ui.uploads import (
    _CHUNK,
    UNZIP_MAX_ENTRIES,
    UNZIP_MAX_ENTRY_BYTES,
    UNZIP_MAX_RATIO,
    UNZIP_MAX_TOTAL_BYTES,
    UNZIP_RATIO_FLOOR_BYTES,
    UPLOAD_LIMIT_BYTES,
    UPLOAD_MAX_AGE_S,
    UPLOAD_TYPES,
    _check_members,
    _check_npz,
    _copy_capped,
    _safe_extract,
    _shown,
    _size,
    _skipped,
    _unpack,
)

__all__ = ["AdvisorApp", "TurnView", "UNZIP_MAX_ENTRIES", "UNZIP_MAX_ENTRY_BYTES", "UNZIP_MAX_RATIO",
           "UNZIP_MAX_TOTAL_BYTES", "UPLOAD_LIMIT_BYTES", "UPLOAD_MAX_AGE_S", "build_app",
           "plot_pareto", "runs_table", "trait_rows", "traits_from_rows"]
