"""agent.commands: the real `metallmix train` command of a config (it parses)."""

from __future__ import annotations

import shlex

from agent.commands import DATASET_PLACEHOLDER, command_notes, train_command

CONFIG = {"model": "resnet18", "pretrained": False, "scheme": "end_to_end", "resolution": 64,
          "optimizer": "adamw", "lr": 0.001, "weight_decay": 0.0001, "batch_size": 64,
          "epochs": 3, "augmentation": "light", "label_smoothing": 0.0}


def test_command_words() -> None:
    line = train_command(CONFIG, "/data/my scans.npz", time_budget_s=600)
    words = shlex.split(line)
    assert words[:3] == ["metallmix", "train", "/data/my scans.npz"]
    assert "--no-pretrained" in words and words[words.index("--lr") + 1] == "0.001"
    assert words[words.index("--time-budget") + 1] == "600"
    assert "train.py" not in line


def test_placeholder_and_knn() -> None:
    line = train_command({**CONFIG, "scheme": "knn", "pretrained": True})
    assert DATASET_PLACEHOLDER in line and "--scheme linear_probing" in line
    notes = " ".join(command_notes({**CONFIG, "scheme": "knn"}, None))
    assert DATASET_PLACEHOLDER in notes and "k-NN" in notes


def test_the_cli_accepts_it() -> None:
    """Every option the command writes is one `metallmix train` declares, and the line parses
    (the real CLI's click command, without running it)."""
    import typer

    from ui.cli import app

    train = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    declared = {opt for p in train.params for opt in (*p.opts, *p.secondary_opts)}
    words = shlex.split(train_command(CONFIG, "x.npz", time_budget_s=60, modality="x-ray"))[2:]
    assert {w for w in words if w.startswith("--")} <= declared
    ctx = train.make_context("train", list(words), resilient_parsing=True)
    assert ctx.params["model"] == "resnet18" and ctx.params["pretrained"] is False
    assert ctx.params["epochs"] == 3 and ctx.params["lr"] == 0.001
