"""`AdvisorApp`: the web app's state and handlers (see `ui.app`)."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from agent.graph import transcript
from agent.judge import judge_transcript
from agent.llm import LLMError
from agent.session import Session
from knowledge.datasets.roots import extra_roots
from knowledge.errors import MetaLLMiXError
from knowledge.explain import plot_waterfall
from knowledge.meta_dataset.shipped import open_store
from knowledge.recommend import Recommendation, get_advisor, meta_from_traits
from tools.data import analyze_dataset
from ui.tables import _empty_runs, plot_pareto, runs_table, trait_rows, traits_from_rows
from ui.turnview import History, T, TurnView, _children, _last, _skip, _unchanged
from ui.uploads import (
    UPLOAD_LIMIT_BYTES,
    UPLOAD_MAX_AGE_S,
    UPLOAD_TYPES,
    _check_npz,
    _safe_extract,
)

log = logging.getLogger("ui.app")

PanelOut = tuple[str, Optional[str], pd.DataFrame, Optional[str]]  # card, waterfall, runs, pareto


class AdvisorApp:
    """The app's state and handlers: one advisor `Session` (None when no LLM is reachable), the run
    store and a work folder for uploads and plots; each browser session is one thread id."""

    def __init__(self, llm: Optional[str] = None, store: "str | Path | None" = None, *,
                 model: Any = None, work_dir: Optional[Path] = None) -> None:
        opened = open_store(store)
        self.store_path = opened.url  # reopens it (a path or a database URL)
        self.store_shown = opened.path  # for display: a URL's password masked
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
            return f"**LLM:** {self.session.backend.description} · store `{self.store_shown}`"
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
