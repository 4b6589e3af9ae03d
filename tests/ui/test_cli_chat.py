"""`metallmix ask` / `judge` with a scripted model file (`--llm scripted:FILE`) over a small store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge.runs.store import RunStore
from tests.agent.helpers import answer_for
from ui.cli import main

TRAITS = {"n_instances": 3000, "n_classes": 3, "modality": "x-ray"}  # what the conversation gives


@pytest.fixture
def store(store: RunStore) -> Path:
    """The file of tests/conftest.py's ready store: `metallmix ask` takes a path."""
    return store.path


def script(tmp_path: Path, replies: list, name: str = "script") -> str:
    """A `scripted:FILE` spec; each `metallmix ask` process starts the script from its first reply."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(replies))
    return f"scripted:{path}"


def test_ask_reaches_a_recommendation_and_resumes_the_thread(store, tmp_path, capsys):
    turn1 = script(tmp_path, [
        {"json": {"n_instances": 3000, "n_classes": 3}},                  # trait extraction
        "Which imaging modality are the images (x-ray, CT, MRI, ...)?",  # the question it asks
    ], "turn1")
    turn2 = script(tmp_path, [  # the regexes read "chest radiographs": no LLM extraction
        answer_for(store, TRAITS),  # the answer: it states the pick
    ], "turn2")
    base = ["--store", str(store), "--thread", "t1", "--json"]
    assert main(["ask", "I have about 3,000 images in 3 classes", "--llm", turn1, *base]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["recommendation"] is None and "modality" in first["reply"].lower()

    transcript = tmp_path / "transcript.json"
    assert main(["ask", "they are chest radiographs", "--llm", turn2, *base, "--transcript", str(transcript)]) == 0
    second = json.loads(capsys.readouterr().out)  # a new graph, resumed from the SQLite checkpoint
    rec = second["recommendation"]
    assert rec is not None and rec["best"]["config"]["model"]
    assert rec["meta_features"]["n_instances"] == 3000 and rec["meta_features"]["modality"] == "x-ray"
    assert {"rank_configs", "explain_config", "similar_runs"} <= {c["tool"] for c in second["tool_calls"]}
    assert second["reply"].startswith(answer_for(store, TRAITS))  # accepted as written
    timing = second["timing"]  # where the turn's time went
    assert timing["llm_calls"] == 1 and timing["seconds"] > 0
    assert [n["node"] for n in timing["nodes"]] == ["extract", "recommend", "answer", "ground"]

    data = json.loads(transcript.read_text())
    assert [m["role"] for m in data["messages"] if m["role"] == "human"] == ["human", "human"]
    judge_llm = script(tmp_path, ["not a rubric"], "judge")  # the judge LLM fails: the deterministic checks decide
    assert main(["judge", str(transcript), "--llm", judge_llm, "--store", str(store), "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["llm_used"] is False and verdict["checks"]


def test_unknown_backend_is_one_error_line(capsys):
    assert main(["ask", "hello", "--llm", "nonsense:x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_chat_holds_a_conversation_on_stdin_in_a_real_process(store, tmp_path):
    import shutil
    import subprocess
    import sys

    llm = script(tmp_path, [
        {"json": {"n_instances": 3000, "n_classes": 3}},
        "Which imaging modality are the images?",
        answer_for(store, TRAITS),
    ], "chat")
    exe = shutil.which("metallmix")
    command = [exe] if exe else [sys.executable, "-m", "ui.cli"]
    result = subprocess.run(
        [*command, "chat", "--llm", llm, "--store", str(store), "--thread", "c1", "--timing"],
        input="I have about 3,000 images in 3 classes\nchest x-rays\n", capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "scripted" in out.lower()  # the backend in use is shown
    assert "modality" in out.lower()  # the question of turn 1
    said = " ".join(out.split())  # the terminal wraps long lines
    assert " ".join(answer_for(store, TRAITS).splitlines()[:2]) in said  # turn 2's answer
    assert "1 LLM call" in out and "answer" in out  # --timing: where the turn's time went


def test_ask_on_a_postgresql_store(store, pg_url, tmp_path, capsys, monkeypatch):
    """The advisor reads a shared store by URL (issue 18): the CLI keeps the URL intact (a Path
    would collapse its `//`), the session reopens it by `.url`, and the password is never printed."""
    from tests.pg_server import fresh_database

    url = fresh_database(pg_url, "chat_store")
    RunStore(url).add_many(RunStore(store).query())
    monkeypatch.setenv("METALLMIX_HOME", str(tmp_path / "home"))  # artifacts keyed by the store identity
    turn = script(tmp_path, [answer_for(url, TRAITS)])
    text = "About 3,000 chest radiographs in 3 classes"
    assert main(["ask", text, "--llm", turn, "--store", url, "--thread", "pg", "--json"]) == 0
    out = capsys.readouterr()
    rec = json.loads(out.out)["recommendation"]
    assert rec is not None and rec["best"]["config"]["model"]
    password = url.split(":")[2].split("@")[0]
    assert password not in out.out and password not in out.err
