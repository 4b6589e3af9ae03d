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
"""

from __future__ import annotations

import json
import logging
import shutil
import stat
import tempfile
import time
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Optional, TypeVar

import pandas as pd

from knowledge.errors import DatasetError, MetaLLMiXError

log = logging.getLogger(__name__)

# Upload limits. A .zip is checked against its declared sizes before anything is written, then
# unpacked with a byte counter (a forged header cannot get past the caps); a .npz (also a zip) must
# keep to the entry count and total unpacked size, since loading it unpacks it in memory.
UPLOAD_LIMIT_BYTES = 200 * 1024 * 1024  #: the largest upload (Gradio's `max_file_size` too)
UNZIP_MAX_ENTRIES = 100_000  #: members of one archive (files and folders)
UNZIP_MAX_ENTRY_BYTES = 64 * 1024 * 1024  #: one unpacked file of a .zip of class folders
UNZIP_MAX_TOTAL_BYTES = 1024 * 1024 * 1024  #: all unpacked files of one upload together
UNZIP_MAX_RATIO = 100  #: unpacked / compressed size of one .zip member ...
UNZIP_RATIO_FLOOR_BYTES = 1024 * 1024  #: ... of at least this unpacked size (small ones vary a lot)
UPLOAD_MAX_AGE_S = 24 * 3600  #: uploads older than this are deleted (at start and on each upload)
_CHUNK = 1024 * 1024  # bytes unpacked at a time
UPLOAD_TYPES = (".npz", ".zip")
TRAIT_COLUMNS = ["trait", "value", "source"]
RUN_COLUMNS = ["dataset", "model", "scheme", "px", "test acc %", "similarity", "source"]

History = list[dict[str, Any]]
PanelOut = tuple[str, Optional[str], pd.DataFrame, Optional[str]]  # card, waterfall, runs, pareto


def _empty_runs() -> pd.DataFrame:
    return pd.DataFrame(columns=RUN_COLUMNS)


def trait_rows(traits: dict[str, Any]) -> pd.DataFrame:
    """Every trait key as a row: value ('' when unknown) and where it came from.
    `traits`: the graph's {name: {"value", "source"}} or plain {name: value}."""
    from knowledge.recommend import TRAIT_KEYS

    rows = []
    for key in TRAIT_KEYS:
        item = traits.get(key)
        if isinstance(item, dict) and "value" in item:
            value, source = item["value"], item.get("source", "")
        else:
            value, source = item, ("measured" if item is not None else "")
        text = "" if value is None else (value if isinstance(value, str) else json.dumps(value))
        rows.append([key, text, source])
    return pd.DataFrame(rows, columns=TRAIT_COLUMNS)


def traits_from_rows(rows: Any) -> dict[str, Any]:
    """The edited traits table back to {trait: value}: blank cells are dropped, numbers and lists
    are read as JSON, anything else is kept as text."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=TRAIT_COLUMNS)
    out: dict[str, Any] = {}
    for key, value in zip(frame.iloc[:, 0], frame.iloc[:, 1]):
        if value is None or (isinstance(value, float) and pd.isna(value)):
            continue
        text = str(value).strip()
        if not key or not text:
            continue
        try:
            out[str(key)] = json.loads(text)
        except ValueError:
            out[str(key)] = text
    return out


def runs_table(rec: Any) -> pd.DataFrame:
    """The similar past runs of a Recommendation as a table."""
    rows = [[h.base_dataset, h.model, h.scheme, h.resolution,
             None if h.test_acc is None else round(100 * h.test_acc, 1), round(h.score, 2), h.source]
            for h in rec.similar_runs]
    return pd.DataFrame(rows, columns=RUN_COLUMNS) if rows else _empty_runs()


def plot_pareto(rec: Any, path: str | Path) -> Optional[Path]:
    """Predicted accuracy vs predicted time of the top configs, the Pareto front highlighted and the
    pick starred, as PNG; None when no config has a predicted time."""
    timed = [r for r in rec.top if r.predicted_seconds is not None]
    front = [r for r in rec.pareto if r.predicted_seconds is not None]
    if not timed and not front:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([r.predicted_seconds / 60 for r in timed], [100 * r.predicted_acc for r in timed],
               color="0.6", label="top configs")
    if front:
        ax.plot([r.predicted_seconds / 60 for r in front], [100 * r.predicted_acc for r in front],
                "o-", color="tab:red", label="Pareto front")
    best = rec.best
    if best.predicted_seconds is not None:
        ax.scatter([best.predicted_seconds / 60], [100 * best.predicted_acc], marker="*", s=250,
                   color="tab:blue", zorder=5, label=f"pick: {best.config.spec.label}")
    ax.set_xscale("log")
    ax.set_xlabel(f"predicted training time (min, {best.device})")
    ax.set_ylabel("predicted test accuracy (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _size(n: float) -> str:
    """A byte count for people: `512 bytes`, `60 KB`, `1.5 GB`."""
    if n < 1024:
        return f"{int(n)} bytes"
    for unit in ("KB", "MB", "GB"):
        n /= 1024
        if n < 1024 or unit == "GB":
            return f"{n:.3g} {unit}"
    raise AssertionError("unreachable")


def _shown(name: str) -> str:
    """An archive member's name, quoted and shortened, for an error message (it is untrusted text)."""
    return repr(name if len(name) <= 80 else name[:77] + "...")


def _skipped(name: str) -> bool:
    """Whether a member is left out: dot-named (`.DS_Store`, `._x.png`) or under `__MACOSX`."""
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/") if part)


def _check_members(archive: str, infos: list[zipfile.ZipInfo], *, per_file: bool = True) -> None:
    """Refuse an archive from its listing, before anything is unpacked: too many members, members
    declared too big (each, when `per_file`; all together) or compressed too well (a zip bomb),
    encrypted members, and links or other special files. DatasetError names the limit."""
    if len(infos) > UNZIP_MAX_ENTRIES:
        raise DatasetError(f"{archive}: {len(infos):,} entries, over the limit of "
                           f"{UNZIP_MAX_ENTRIES:,} entries per archive")
    total = 0
    for info in infos:
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            raise DatasetError(f"{archive}: symbolic links are not allowed in an upload "
                               f"({_shown(info.filename)})")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise DatasetError(f"{archive}: only plain files and folders are allowed in an upload "
                               f"({_shown(info.filename)})")
        if info.flag_bits & 0x1:
            raise DatasetError(f"{archive}: encrypted entries are not supported ({_shown(info.filename)})")
        if per_file and info.file_size > UNZIP_MAX_ENTRY_BYTES:
            raise DatasetError(f"{archive}: {_shown(info.filename)} unpacks to {_size(info.file_size)}, "
                               f"over the {_size(UNZIP_MAX_ENTRY_BYTES)} limit per file")
        if per_file and info.file_size >= UNZIP_RATIO_FLOOR_BYTES and (
                info.file_size > UNZIP_MAX_RATIO * max(info.compress_size, 1)):
            ratio = info.file_size / max(info.compress_size, 1)
            raise DatasetError(f"{archive}: {_shown(info.filename)} is compressed {ratio:,.0f}:1, "
                               f"over the {UNZIP_MAX_RATIO}:1 limit (a zip bomb?)")
        total += info.file_size
        if total > UNZIP_MAX_TOTAL_BYTES:
            raise DatasetError(f"{archive}: unpacks to more than {_size(UNZIP_MAX_TOTAL_BYTES)}, the "
                               "limit of unpacked data per upload")


def _copy_capped(source: IO[bytes], dest: IO[bytes], cap: int, too_big: str) -> int:
    """Copy `source` to `dest` in chunks, refusing (DatasetError `too_big`) as soon as more than
    `cap` bytes came out, whatever the archive's header said; returns the bytes copied."""
    copied = 0
    while chunk := source.read(min(_CHUNK, cap - copied + 1)):
        copied += len(chunk)
        if copied > cap:
            raise DatasetError(too_big)
        dest.write(chunk)
    return copied


def _unpack(zf: zipfile.ZipFile, archive: str, infos: list[zipfile.ZipInfo], root: Path) -> None:
    """Write the (already checked) members into `root`, skipping dot-named ones, counting the bytes
    that really come out against the declared sizes and the caps."""
    left = UNZIP_MAX_TOTAL_BYTES
    for info in infos:
        if _skipped(info.filename):
            continue
        dest = root / info.filename
        if info.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            raise DatasetError(f"{archive}: {_shown(info.filename)} appears twice in the archive")
        cap = min(info.file_size, UNZIP_MAX_ENTRY_BYTES, left)
        with zf.open(info) as source, open(dest, "xb") as out:
            left -= _copy_capped(source, out, cap, (
                f"{archive}: {_shown(info.filename)} unpacks to more than its header says or than "
                f"the limits allow ({_size(UNZIP_MAX_ENTRY_BYTES)} per file, "
                f"{_size(UNZIP_MAX_TOTAL_BYTES)} per upload)"))


def _safe_extract(archive: Path, target: Path) -> Path:
    """Extract a .zip of class folders into `target` (a new folder); returns the dataset folder
    (the single top-level folder when there is one).

    Refused with DatasetError, and `target` removed, before anything is written when a member
    leaves `target`, is a link or special file, is encrypted, or the listing breaks a limit
    (`UNZIP_MAX_*`); and while unpacking when more bytes come out than declared or allowed.
    Dot-named members (`.DS_Store`, `__MACOSX/`) are skipped."""
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            root = target.resolve()
            for member in infos:
                dest = (target / member.filename).resolve()
                if not dest.is_relative_to(root):
                    raise DatasetError(f"{archive.name}: unsafe path in the archive: "
                                       f"{_shown(member.filename)}")
            _check_members(archive.name, infos)
            target.mkdir(parents=True, exist_ok=True)
            _unpack(zf, archive.name, infos, target)
    except DatasetError:
        shutil.rmtree(target, ignore_errors=True)
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, ValueError,
            NotImplementedError) as exc:
        shutil.rmtree(target, ignore_errors=True)
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DatasetError(f"{archive.name}: not a valid .zip file ({type(exc).__name__}: "
                           f"{(detail.splitlines() or [''])[0][:120]})") from None
    entries = [p for p in target.iterdir() if not _skipped(p.name)]
    if len(entries) == 1 and entries[0].is_dir():
        inner = [p for p in entries[0].iterdir() if p.is_dir() and not p.name.startswith(".")]
        if inner:
            return entries[0]
    return target


def _check_npz(archive: Path) -> None:
    """Refuse a .npz (a zip of arrays, unpacked in memory when loaded) with too many members or too
    much unpacked data (`UNZIP_MAX_ENTRIES`, `UNZIP_MAX_TOTAL_BYTES`)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            _check_members(archive.name, zf.infolist(), per_file=False)
    except zipfile.BadZipFile:
        raise DatasetError(f"{archive.name}: not a valid .npz file") from None


T = TypeVar("T")


def _children(folder: Path) -> list[Path]:
    """The sub-folders of `folder` (none when it is gone or unreadable)."""
    try:
        return [p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return []


def _last(values: Iterator[T]) -> T:
    """The last value a generator yields (the handlers' non-streaming form)."""
    last = None
    for last in values:
        pass
    assert last is not None, "a handler yields at least once"
    return last


def _skip() -> Any:
    """An output that Gradio leaves as it is."""
    import gradio as gr

    return gr.skip()


def _unchanged(n: int) -> list[Any]:
    """`n` outputs that Gradio leaves as they are (the panels while a turn streams)."""
    return [_skip() for _ in range(n)]


class TurnView:
    """The chat messages of one streamed turn (events of `Session.stream_turn`): the steps as one
    collapsed "thought" message, spinning while the turn runs, then the answer below it: the
    draft as the LLM writes it, replaced by the final (grounded) reply at the end."""

    def __init__(self, history: History) -> None:
        self.base = list(history)  # the conversation up to and including the user's message
        self.steps: list[str] = []
        self.current = "starting"
        self.draft = ""
        self.reply: Optional[str] = None
        self.rejected = False

    def add(self, event: dict[str, Any]) -> bool:
        """Take one event; True when what the user sees changed."""
        kind = event.get("type")
        if kind == "start":
            self.current = event["label"]
        elif kind == "step":
            line = f"- {event['label']}"
            if event.get("tool"):
                line += f" — `{event['tool']}` {event.get('detail', '')}"
            elif event.get("detail"):
                line += f": {event['detail']}"
            self.steps.append(line)
        elif kind == "token":
            self.draft = event["draft"]
        elif kind == "rejected":
            self.steps.append(f"- ⚠️ {event['label']}")
            self.current, self.draft, self.rejected = "rewriting the answer", "", True
        elif kind == "final":
            self.reply = event["result"]["reply"] or "(no answer)"
            if self.rejected:
                self.steps.append("- the streamed draft was replaced by the grounded answer below")
        else:
            return False
        return True

    def fail(self, message: str) -> None:
        self.reply = f"error: {message}"

    def history(self) -> History:
        out = [dict(m) for m in self.base]
        done = self.reply is not None
        if not done:  # what runs now in the title, what is finished below it
            out.append({"role": "assistant", "content": "\n".join(self.steps) or "…",
                        "metadata": {"title": f"Working: {self.current}…", "status": "pending"}})
        elif self.steps:
            out.append({"role": "assistant", "content": "\n".join(self.steps),
                        "metadata": {"title": f"Tool steps ({len(self.steps)})", "status": "done"}})
        text = self.reply if done else self.draft
        if text:
            out.append({"role": "assistant", "content": text})
        return out


class AdvisorApp:
    """The app's state and handlers: one advisor `Session` (None when no LLM is reachable), the run
    store and a work folder for uploads and plots; each browser session is one thread id."""

    def __init__(self, llm: Optional[str] = None, store: Optional[Path] = None, *,
                 model: Any = None, work_dir: Optional[Path] = None) -> None:
        from agent.llm import LLMError
        from agent.session import Session
        from knowledge.meta_dataset.shipped import open_store

        self.store_path = open_store(store).path
        self.llm_error: Optional[str] = None
        self.session: Optional[Session] = None
        try:
            self.session = Session(llm, self.store_path, model=model)
        except LLMError as exc:
            self.llm_error = str(exc)
            log.warning("no LLM: %s", exc)
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="metallmix-ui-"))
        self.upload_dir = self.work_dir / "uploads"
        self.plot_dir = self.work_dir / "plots"
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        self.prune_uploads()

    # -- status -------------------------------------------------------------------------------
    def backend_text(self) -> str:
        if self.session is not None:
            return f"**LLM:** {self.session.backend.description} · store `{self.store_path}`"
        return (f"**No LLM:** {self.llm_error}\n\nThe traits panel and *Recommend from these traits* "
                "still work without one.")

    @staticmethod
    def thread_of(thread: Optional[str]) -> str:
        """The browser session's thread id (a new one the first time)."""
        return thread or uuid.uuid4().hex

    # -- uploads: each session reads only its own ----------------------------------------------
    def uploads_of(self, thread: str) -> Path:
        """The folder of one session's uploads (`upload_dir/<thread>`)."""
        if not thread or thread in (".", "..") or Path(thread).name != thread:
            raise ValueError(f"not a thread id: {thread!r}")
        return self.upload_dir / thread

    def session_roots(self, thread: str) -> Any:
        """A context manager: inside it, dataset paths may also lie in this session's upload folder
        (and in no other session's: the upload folders are never a process-wide data root)."""
        from knowledge.datasets.roots import extra_roots

        return extra_roots([self.uploads_of(thread)])

    def _scoped(self, thread: str, steps: Iterator[T]) -> Iterator[T]:
        """The values of `steps`, each computed inside `session_roots(thread)`. The scope is opened
        anew for every step, because Gradio runs each step of a streaming handler in a worker thread
        with its own copy of the context, where a scope opened by an earlier step would be missing."""
        try:
            while True:
                with self.session_roots(thread):
                    try:
                        value = next(steps)
                    except StopIteration:
                        return
                yield value
        finally:
            close = getattr(steps, "close", None)
            if close is not None:
                close()

    def end_session(self, thread: Optional[str]) -> None:
        """A browser session ended (Gradio deletes its state): delete its uploads."""
        if not thread:
            return
        try:
            folder = self.uploads_of(thread)
        except ValueError:
            return
        shutil.rmtree(folder, ignore_errors=True)

    def prune_uploads(self, max_age_s: float = UPLOAD_MAX_AGE_S) -> int:
        """Delete the uploads older than `max_age_s` seconds, and session folders left empty;
        returns how many uploads went."""
        cutoff = time.time() - max_age_s
        gone = 0
        for session in _children(self.upload_dir):
            for upload in _children(session):
                try:
                    if upload.lstat().st_mtime >= cutoff:
                        continue
                    shutil.rmtree(upload)
                    gone += 1
                except OSError:  # gone already (another handler pruned it), or not ours to delete
                    continue
            try:
                session.rmdir()  # only when empty
            except OSError:
                pass
        return gone

    # -- panels -------------------------------------------------------------------------------
    def panels(self, rec_data: Any, thread: str) -> PanelOut:
        """Card, waterfall PNG, similar-runs table and Pareto PNG of a recommendation (dict or model)."""
        from knowledge.explain import plot_waterfall
        from knowledge.recommend import Recommendation

        if rec_data is None:
            return "_No recommendation yet._", None, _empty_runs(), None
        rec = rec_data if isinstance(rec_data, Recommendation) else Recommendation.model_validate(rec_data)
        stamp = uuid.uuid4().hex[:8]  # a new file name per turn, so the browser does not cache an old plot
        folder = self.plot_dir / thread
        waterfall = plot_waterfall(rec.explanation, folder / f"waterfall-{stamp}.png")
        pareto = plot_pareto(rec, folder / f"pareto-{stamp}.png")
        return rec.to_markdown(), str(waterfall), runs_table(rec), (str(pareto) if pareto else None)

    def _state_outputs(self, thread: str) -> tuple[pd.DataFrame, str, Optional[str], pd.DataFrame,
                                                   Optional[str]]:
        values = self.session.values(thread) if self.session is not None else {}
        return (trait_rows(values.get("traits") or {}), *self.panels(values.get("recommendation"), thread))

    # -- handlers -----------------------------------------------------------------------------
    def chat_stream(self, message: str, history: Optional[History],
                    thread: Optional[str]) -> Iterator[tuple]:
        """One user message, streamed: yields (history, cleared textbox, thread, traits, card,
        waterfall, runs, pareto) as the turn goes: the history shows the tool steps so far and the
        answer draft; the traits and the card/plots/runs are filled in as soon as the graph has
        them, else left as they are (`gr.skip()`); the last value has every panel. The advisor may
        read this session's uploads, and no other session's."""
        thread = self.thread_of(thread)
        yield from self._scoped(thread, self._chat_steps(message, history, thread))

    def _chat_steps(self, message: str, history: Optional[History], thread: str) -> Iterator[tuple]:
        """`chat_stream` without the scope of the session's uploads."""
        history = list(history or [])
        text = (message or "").strip()
        if not text:
            yield (history, "", thread, *self._state_outputs(thread))
            return
        history.append({"role": "user", "content": text})
        if self.session is None:
            history.append({"role": "assistant", "content": (
                f"I cannot chat: {self.llm_error}. Fill in the traits on the right and press "
                "**Recommend from these traits** for a recommendation without an LLM.")})
            yield (history, "", thread, *self._state_outputs(thread))
            return
        view = TurnView(history)
        yield (view.history(), "", thread, *_unchanged(5))
        try:
            for event in self.session.stream_turn(text, thread):
                if event["type"] == "traits":  # the panels as soon as the graph knows them
                    yield (view.history(), "", thread, trait_rows(event["traits"]), *_unchanged(4))
                elif event["type"] == "recommendation":
                    yield (view.history(), "", thread, _skip(),
                           *self.panels(event["recommendation"], thread))
                elif view.add(event) and view.reply is None:  # the final one comes with all panels
                    yield (view.history(), "", thread, *_unchanged(5))
        except MetaLLMiXError as exc:
            view.fail(str(exc))
        yield (view.history(), "", thread, *self._state_outputs(thread))

    def chat(self, message: str, history: Optional[History], thread: Optional[str]) -> tuple:
        """One user message -> (history, cleared textbox, thread, traits, card, waterfall, runs,
        pareto) once the turn is over (the last of `chat_stream`)."""
        return _last(self.chat_stream(message, history, thread))

    def recommend_from_traits(self, rows: Any, budget: Optional[str], thread: Optional[str]) -> tuple:
        """The no-LLM path: the edited traits -> (status, card, waterfall, runs, pareto)."""
        from knowledge.recommend import get_advisor, meta_from_traits

        thread = self.thread_of(thread)
        traits = traits_from_rows(rows)
        if not traits:
            return ("Fill in at least the number of images and classes.",
                    *self.panels(None, thread))
        try:
            with self.session_roots(thread):
                rec = get_advisor(self.store_path).recommend(meta_from_traits(traits),
                                                             budget=(budget or "").strip() or None)
        except MetaLLMiXError as exc:
            return (f"error: {exc}", *self.panels(None, thread))
        return (f"Recommended from {len(traits)} traits (no LLM involved).", *self.panels(rec, thread))

    def upload_stream(self, file: Any, history: Optional[History],
                      thread: Optional[str]) -> Iterator[tuple]:
        """A .npz / .zip upload -> saved in the session's folder, measured, and told to the advisor
        (whose turn streams). Yields (status, history, thread, traits, card, waterfall, runs, pareto).
        A refused upload leaves nothing on disk; uploads older than `UPLOAD_MAX_AGE_S` are deleted."""
        thread = self.thread_of(thread)
        yield from self._scoped(thread, self._upload_steps(file, history, thread))

    def _upload_steps(self, file: Any, history: Optional[History], thread: str) -> Iterator[tuple]:
        """`upload_stream` without the scope of the session's uploads."""
        from tools.data import analyze_dataset

        history = list(history or [])

        def out(status: str, traits: Optional[pd.DataFrame] = None) -> tuple:
            rows, *panel = self._state_outputs(thread)
            return (status, history, thread, rows if traits is None else traits, *panel)

        if file is None:
            yield out("No file chosen.")
            return
        source = Path(file if isinstance(file, (str, Path)) else getattr(file, "name", str(file)))
        name = source.name
        if source.suffix.lower() not in UPLOAD_TYPES:
            yield out(f"error: {name}: unsupported file type {source.suffix or '(none)'!r}; "
                       "upload a MedMNIST-style .npz or a .zip of class folders")
            return
        size = source.stat().st_size
        if size > UPLOAD_LIMIT_BYTES:
            yield out(f"error: {name}: {size / 2**20:.0f} MB is over the "
                      f"{UPLOAD_LIMIT_BYTES // 2**20} MB upload limit")
            return
        self.prune_uploads()
        folder = self.uploads_of(thread) / uuid.uuid4().hex[:8]
        folder.mkdir(parents=True)
        try:
            if source.suffix.lower() == ".zip":
                dataset = _safe_extract(source, folder / source.stem)
            else:
                _check_npz(source)
                dataset = folder / name
                shutil.copyfile(source, dataset)
            measured = analyze_dataset(str(dataset))
        except MetaLLMiXError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            yield out(f"error: {exc}")
            return
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        status = (f"{name}: {measured['traits'].get('n_instances')} images, "
                  f"{measured['traits'].get('n_classes')} classes measured.")
        if self.session is None:  # no advisor to tell: show the measured traits for the no-LLM button
            yield out(status + " Press *Recommend from these traits*.", trait_rows(measured["traits"]))
            return
        for history, _, thread, *rest in self._chat_steps(f"I uploaded my dataset: {dataset}",
                                                          history, thread):
            yield (status, history, thread, *rest)

    def upload(self, file: Any, history: Optional[History], thread: Optional[str]) -> tuple:
        """`upload_stream`'s last value: (status, history, thread, traits, card, waterfall, runs,
        pareto) once the advisor has answered."""
        return _last(self.upload_stream(file, history, thread))

    def grade(self, thread: Optional[str]) -> str:
        """The judge's verdict of this conversation as Markdown."""
        from agent.graph import transcript
        from agent.judge import judge_transcript

        if self.session is None:
            return "Grading needs the conversation with the advisor (no LLM is available)."
        thread = self.thread_of(thread)
        values = self.session.values(thread)
        if not values.get("recommendation"):
            return "Nothing to grade yet: get a recommendation first."
        try:
            with self.session_roots(thread):
                verdict = judge_transcript(transcript(values), self.session.model,
                                           store=self.store_path)
        except MetaLLMiXError as exc:
            return f"error: {exc}"
        lines = [f"**{'Passed' if verdict.passed else 'Not passed'}**"
                 + ("" if verdict.llm_used else " (deterministic checks only)"), ""]
        for name in verdict.scores():
            c = getattr(verdict, name)
            lines.append(f"- **{name}** {c.score}/5 — {c.reason}")
        return "\n".join(lines)

    def close(self) -> None:
        """The app stops: close the conversations' store and delete every session's uploads."""
        if self.session is not None:
            self.session.close()
        shutil.rmtree(self.upload_dir, ignore_errors=True)


def _limit_uploads(demo: Any) -> None:
    """Make `demo.launch()` refuse uploads over `UPLOAD_LIMIT_BYTES` (Gradio's `max_file_size`)
    unless the caller passes its own limit."""
    launch = demo.launch

    def launch_limited(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("max_file_size", UPLOAD_LIMIT_BYTES)
        return launch(*args, **kwargs)

    demo.launch = launch_limited


def build_app(llm: Optional[str] = None, store: Optional[Path] = None, *, model: Any = None,
              app: Optional[AdvisorApp] = None) -> Any:
    """The Gradio Blocks of the app (call `.launch()` on it). `app.advisor` is the AdvisorApp."""
    import gradio as gr

    advisor = app or AdvisorApp(llm, store, model=model)
    # Gradio's own copies of uploaded files go after UPLOAD_MAX_AGE_S too (checked every hour)
    with gr.Blocks(title="MetaLLMiX advisor", delete_cache=(3600, UPLOAD_MAX_AGE_S)) as demo:
        thread = gr.State(None, delete_callback=advisor.end_session)  # the session's uploads go with it
        gr.Markdown("# MetaLLMiX — which pretrained model and hyperparameters for my images?")
        gr.Markdown(advisor.backend_text(), elem_id="backend")
        with gr.Row():
            with gr.Column(scale=5):
                chatbot = gr.Chatbot(label="Advisor", height=520, elem_id="chat")
                box = gr.Textbox(placeholder="Describe your dataset: images, classes, size, modality, "
                                 "budget ...", show_label=False)
                with gr.Row():
                    send = gr.Button("Send", variant="primary")
                    launch = gr.Button("Launch training")
                gr.Markdown("_Launching asks you to confirm: answer **yes** in the chat._")
                upload = gr.File(label="Upload a dataset (.npz or .zip of class folders, "
                                 f"≤ {UPLOAD_LIMIT_BYTES // 2**20} MB)",
                                 file_types=list(UPLOAD_TYPES), type="filepath", elem_id="upload")
                upload_status = gr.Markdown(elem_id="upload-status")
            with gr.Column(scale=5):
                traits = gr.Dataframe(value=trait_rows({}), headers=TRAIT_COLUMNS, interactive=True,
                                      label="Traits known so far (editable)", elem_id="traits")
                with gr.Row():
                    budget = gr.Textbox(label="Budget (optional)", placeholder="e.g. 1 hour on a T4")
                    rec_button = gr.Button("Recommend from these traits")
                rec_status = gr.Markdown(elem_id="rec-status")
                card = gr.Markdown("_No recommendation yet._", elem_id="card", max_height=560)
                with gr.Row():
                    waterfall = gr.Image(label="Why (SHAP waterfall)", type="filepath",
                                         elem_id="waterfall")
                    pareto = gr.Image(label="Accuracy vs time (Pareto front)", type="filepath",
                                      elem_id="pareto")
                runs = gr.Dataframe(value=_empty_runs(), label="Similar past runs", interactive=False,
                                    elem_id="runs")
                grade_button = gr.Button("Grade this conversation")
                verdict = gr.Markdown(elem_id="verdict")
        panel = [traits, card, waterfall, runs, pareto]
        chat_out = [chatbot, box, thread, *panel]
        box.submit(advisor.chat_stream, [box, chatbot, thread], chat_out)
        send.click(advisor.chat_stream, [box, chatbot, thread], chat_out)

        def ask_launch(history: Optional[History], thread_id: Optional[str]) -> Iterator[tuple]:
            yield from advisor.chat_stream("Please launch training of the recommended config.",
                                           history, thread_id)

        launch.click(ask_launch, [chatbot, thread], chat_out)
        rec_button.click(advisor.recommend_from_traits, [traits, budget, thread],
                         [rec_status, card, waterfall, runs, pareto])
        upload.upload(advisor.upload_stream, [upload, chatbot, thread],
                      [upload_status, chatbot, thread, *panel])
        grade_button.click(advisor.grade, [thread], [verdict])
    _limit_uploads(demo)
    demo.advisor = advisor
    return demo


__all__ = ["AdvisorApp", "TurnView", "UNZIP_MAX_ENTRIES", "UNZIP_MAX_ENTRY_BYTES", "UNZIP_MAX_RATIO",
           "UNZIP_MAX_TOTAL_BYTES", "UPLOAD_LIMIT_BYTES", "UPLOAD_MAX_AGE_S", "build_app",
           "plot_pareto", "runs_table", "trait_rows", "traits_from_rows"]
