"""The web app's handlers (`ui.app.AdvisorApp`), called directly with a scripted model over a small store."""

from __future__ import annotations

import zipfile
from pathlib import Path

from tests.agent.helpers import answer_for, prompt_script
from tests.ui.helpers import make_app, tiny_npz
from ui.app import AdvisorApp, build_app, trait_rows
from ui.tables import trait_label

TURN1 = [{"json": {"n_instances": 3000, "n_classes": 3}},                 # trait extraction
         "Which imaging modality are the images (x-ray, CT, MRI, ...)?"]  # the question it asks
TRAITS = {"n_instances": 3000, "n_classes": 3, "modality": "x-ray"}


def turn2(store: Path) -> list:
    """Turn 2's replies: the trait extraction, then a complete answer (it states the pick)."""
    return [{"json": {"modality": "x-ray"}}, answer_for(store, TRAITS)]


def test_conversation_reaches_a_recommendation_with_panels(store_path, tmp_path):
    app = make_app(tmp_path, store_path, [*TURN1, *turn2(store_path), "not a rubric"])
    demo = build_app(app=app)  # the Blocks build over the same handlers
    assert demo.advisor is app and "scripted" in app.backend_text().lower()

    history, box, thread, traits, card, waterfall, runs, pareto = app.chat(
        "I have about 3,000 images in 3 classes", [], None)
    assert thread and box == "" and "modality" in history[-1]["content"].lower()
    assert waterfall is None and runs.empty and "No recommendation" in card
    assert traits.set_index("trait").loc[trait_label("n_instances"), "value"] == "3000"

    history, _, same, traits, card, waterfall, runs, pareto = app.chat(
        "they are chest radiographs", history, thread)
    assert same == thread
    assert history[-1]["content"].startswith("Recommended: ")  # the model's answer, accepted
    values = app.session.values(thread)
    model = values["recommendation"]["best"]["config"]["model"]
    from knowledge.search_space import MODELS
    assert MODELS[model].label in card and "## Recommendation" in card
    assert Path(waterfall).stat().st_size > 0 and Path(pareto).stat().st_size > 0
    assert not runs.empty
    assert traits.set_index("trait").loc[trait_label("modality"), "source"] == "stated"
    steps = [m for m in history if m.get("metadata")]  # the turn's tool calls, as a collapsed message
    assert steps and "rank_configs" in steps[-1]["content"]

    verdict = app.grade(thread)  # the judge LLM fails: the deterministic checks decide
    assert "format" in verdict and "/5" in verdict
    app.close()


def test_the_chat_handler_streams_steps_and_the_draft(store_path, tmp_path):
    import gradio as gr

    from agent.testing import ScriptedChatModel
    from agent.toolcalls import ToolCallingModel

    good = answer_for(store_path, TRAITS)  # a complete answer: it states the pick
    script = prompt_script(TRAITS, ["Pick it: it reaches 99.9% accuracy.",  # refused by the check
                                    good])
    app = AdvisorApp(None, store_path, model=ToolCallingModel(inner=ScriptedChatModel(script=script)),
                     work_dir=tmp_path / "ui")
    outputs = list(app.chat_stream("3,000 chest x-rays in 3 classes", [], None))
    *live, last = outputs
    assert len(live) >= 5
    assert live[0][0][0] == {"role": "user", "content": "3,000 chest x-rays in 3 classes"} and live[0][1] == ""
    def kept(value) -> bool:  # an output Gradio leaves as it is
        return isinstance(value, dict) and value == gr.skip()

    traits_at = next(i for i, o in enumerate(live) if not kept(o[3]))  # traits shown once extracted
    assert live[traits_at][3].set_index("trait").loc[trait_label("modality"), "value"] == "x-ray"
    card_at = next(i for i, o in enumerate(live) if not kept(o[4]))  # the card once recommended ...
    assert "## Recommendation" in live[card_at][4] and Path(live[card_at][5]).exists()
    drafting = [i for i, o in enumerate(live) if o[0][-1].get("role") == "assistant"
                and not o[0][-1].get("metadata")]
    assert traits_at < card_at < drafting[0]  # ... before the answer is written
    for o in live:  # otherwise the panels are left as they are: all four, or the traits
        assert all(kept(v) for v in o[4:]) or (kept(o[3]) and not any(kept(v) for v in o[4:]))
    thoughts = [m for o in live for m in o[0] if m.get("metadata")]
    assert all(m["metadata"]["status"] == "pending" for m in thoughts)
    titles = [m["metadata"]["title"] for m in thoughts]
    for now in ("extracting traits", "ranking configs, explaining, retrieving similar runs",
                "writing the answer", "checking the numbers of the answer"):
        assert f"Working: {now}…" in titles  # what runs now
    for done in ("extracting traits", "ranking configs", "explaining", "retrieving similar runs",
                 "writing the answer"):
        assert any(f"- {done}" in m["content"] for m in thoughts)  # what is finished
    drafts = [o[0][-1]["content"] for o in live if o[0][-1].get("role") == "assistant"
              and not o[0][-1].get("metadata")]
    assert "Pick it: it reaches 99.9% accuracy." in drafts  # streamed, then taken back

    history, box, thread, traits, card, waterfall, runs, pareto = last
    steps, answer = history[-2], history[-1]
    assert steps["metadata"]["status"] == "done" and steps["metadata"]["title"].startswith("Tool steps")
    assert "draft rejected" in steps["content"] and "99.9%" in steps["content"]
    assert "replaced by the grounded answer" in steps["content"]
    assert answer["content"].startswith(good) and "99.9" not in answer["content"]
    assert "## Recommendation" in card and Path(waterfall).exists() and not runs.empty
    app.close()


def test_two_browser_sessions_stay_isolated(store_path, tmp_path):
    app = make_app(tmp_path, store_path, [*TURN1, {"json": {"n_instances": 500, "n_classes": 7}},
                                     "Which imaging modality are the images?"])
    _, _, a, traits_a, *_ = app.chat("I have about 3,000 images in 3 classes", [], None)
    _, _, b, traits_b, *_ = app.chat("500 images, 7 classes", [], None)
    assert a != b
    assert traits_a.set_index("trait").loc[trait_label("n_classes"), "value"] == "3"
    assert traits_b.set_index("trait").loc[trait_label("n_classes"), "value"] == "7"
    assert app.session.values(a)["traits"]["n_instances"]["value"] == 3000
    assert len([m for m in app.session.values(b)["messages"] if m.type == "human"]) == 1
    app.close()


def test_upload_of_a_tiny_npz_is_measured_and_told_to_the_advisor(store_path, tmp_path):
    app = make_app(tmp_path, store_path, ["Which imaging modality are the images?"] * 4)
    status, history, thread, traits, *_ = app.upload(str(tiny_npz(tmp_path / "tiny.npz")), [], None)
    assert "tiny.npz" in status and "classes" in status, status
    assert history[0]["role"] == "user" and "I uploaded" in history[0]["content"]
    saved = Path(history[0]["content"].split(": ", 1)[1])
    assert saved.is_relative_to(app.upload_dir) and saved.exists()
    assert traits.set_index("trait").loc[trait_label("n_classes"), "value"] == "2"
    app.close()


def test_upload_refuses_bad_files_with_one_line(store_path, tmp_path):
    app = make_app(tmp_path, store_path, [])
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    status, history, *_ = app.upload(str(text), [], None)
    assert status.startswith("error: notes.txt") and "type" in status and history == []
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip archive")
    status, *_ = app.upload(str(broken), [], None)
    assert status.startswith("error:") and "\n" not in status
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape/a.png", b"x")
    status, *_ = app.upload(str(evil), [], None)
    assert status.startswith("error: evil.zip: unsafe path")
    app.close()


def test_without_an_llm_the_traits_panel_still_recommends(store_path, tmp_path, monkeypatch):
    import agent.llm
    from agent.llm import LLMUnavailable

    def unavailable(*args, **kwargs):
        raise LLMUnavailable("no LLM available (test)")

    monkeypatch.setattr(agent.llm, "get_chat_model", unavailable)
    monkeypatch.setattr("agent.session.get_chat_model", unavailable, raising=False)  # imported there
    app = AdvisorApp(None, store_path, work_dir=tmp_path / "ui")
    assert app.session is None and "no LLM available (test)" in app.backend_text()
    build_app(app=app)
    history, *_ = app.chat("hello", [], "t")
    assert "no LLM available (test)" in history[-1]["content"]

    rows = trait_rows({"n_instances": 3000, "n_classes": 3, "modality": "x-ray"})
    status, card, waterfall, runs, pareto = app.recommend_from_traits(rows, "", "t")
    assert "no LLM" in status and "## Recommendation" in card
    assert Path(waterfall).exists() and Path(pareto).exists() and not runs.empty
    status, card, *_ = app.recommend_from_traits(trait_rows({"n_classes": 0}), "", "t")
    assert status.startswith("error:") and "No recommendation" in card

    status, _, _, traits, *_ = app.upload(str(tiny_npz(tmp_path / "tiny.npz")), [], "t")
    assert "Recommend from these traits" in status
    assert traits.set_index("trait").loc[trait_label("n_instances"), "value"] == "40"  # the training split
    assert "no LLM" in app.grade("t")


def test_ui_command_launches_the_app_on_host_and_port(monkeypatch):
    import typer
    from typer.testing import CliRunner

    import ui.app
    from ui.cli.ui import ui as ui_command

    launched = {}

    class FakeDemo:
        class advisor:  # noqa: N801 - stands for the AdvisorApp the real Blocks carry
            @staticmethod
            def close() -> None:
                launched["closed"] = True

        @staticmethod
        def launch(**kwargs) -> None:
            launched.update(kwargs)

    monkeypatch.setattr(ui.app, "build_app", lambda llm, store: launched.update(llm=llm) or FakeDemo)
    cli = typer.Typer()
    cli.command()(ui_command)
    cli.command("other")(lambda: None)  # two commands: `ui` is addressed by name, like in `metallmix`
    result = CliRunner().invoke(cli, ["ui", "--host", "0.0.0.0", "--port", "7999", "--llm", "scripted:x"])
    assert result.exit_code == 0, result.output
    assert launched == {"llm": "scripted:x", "server_name": "0.0.0.0", "server_port": 7999, "closed": True}


def test_the_app_launches_with_the_upload_limit_as_gradio_max_file_size(store_path, tmp_path, monkeypatch):
    import gradio as gr

    from ui.app import UPLOAD_LIMIT_BYTES

    launched = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kwargs: launched.append(kwargs))
    app = make_app(tmp_path, store_path, [])
    demo = build_app(app=app)
    demo.launch(server_name="127.0.0.1")
    demo.launch(max_file_size="1mb")  # a caller's own limit wins
    assert launched == [{"server_name": "127.0.0.1", "max_file_size": UPLOAD_LIMIT_BYTES},
                        {"max_file_size": "1mb"}]
    assert f"{UPLOAD_LIMIT_BYTES // 2**20} MB" in next(
        b.label for b in demo.blocks.values() if getattr(b, "elem_id", None) == "upload")
    app.close()


def test_a_sessions_uploads_are_deleted_when_it_ends(store_path, tmp_path):
    import gradio as gr

    app = make_app(tmp_path, store_path, ["Which imaging modality are the images?"] * 4)
    demo = build_app(app=app)
    [state] = [b for b in demo.blocks.values() if isinstance(b, gr.State)]
    assert state.delete_callback == app.end_session  # Gradio calls it when the session is gone
    _, history, thread, *_ = app.upload(str(tiny_npz(tmp_path / "tiny.npz")), [], None)
    _, _, other, *_ = app.upload(str(tiny_npz(tmp_path / "tiny.npz")), [], None)
    saved = Path(history[0]["content"].split(": ", 1)[1])
    assert saved.exists()
    state.delete_callback(thread)
    assert not saved.exists() and not (app.upload_dir / thread).exists()
    assert (app.upload_dir / other).exists()  # the other session keeps its own
    for odd in (None, "", "..", "../ui", "a/b"):  # nothing outside the session folders is touched
        app.end_session(odd)
    assert app.upload_dir.exists() and (app.upload_dir / other).exists()
    app.close()
    assert not app.upload_dir.exists()  # the app stopped: every upload goes


def test_uploads_older_than_the_max_age_are_deleted(store_path, tmp_path):
    import os
    import time

    from ui.app import UPLOAD_MAX_AGE_S

    app = make_app(tmp_path, store_path, ["Which imaging modality are the images?"] * 4)
    old, new = app.upload_dir / "t1" / "old", app.upload_dir / "t2" / "new"
    for folder in (old, new):
        folder.mkdir(parents=True)
        (folder / "x.npz").write_bytes(b"x")
    stale = time.time() - UPLOAD_MAX_AGE_S - 60
    os.utime(old, (stale, stale))
    restarted = make_app(tmp_path, store_path, ["Which imaging modality are the images?"] * 4)
    assert not old.exists() and not old.parent.exists() and new.exists()  # pruned at start
    os.utime(new, (stale, stale))
    restarted.upload(str(tiny_npz(tmp_path / "tiny.npz")), [], "t3")
    assert not new.exists() and any((restarted.upload_dir / "t3").iterdir())  # and on each upload
    app.close()
    restarted.close()
