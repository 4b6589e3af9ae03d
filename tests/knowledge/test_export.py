"""`knowledge.recommend.export`: the top-k handed to Optuna, Ray Tune, JSON and `metallmix train`."""

from __future__ import annotations

import json
import shlex

import optuna
import pytest
import typer

from knowledge.errors import ConfigError
from knowledge.metafeatures import from_traits
from knowledge.recommend import Recommendation, clear_cache, recommend
from knowledge.recommend.export import (
    FILE_NAMES,
    FORMATS,
    check_formats,
    config_from_params,
    export,
    export_paths,
    get_space,
    outside_space,
    outside_warnings,
    to_commands,
    to_json,
    to_optuna,
    to_ray,
    train_args,
    trial_params,
    write_atomic,
)
from knowledge.retrieval import HashingEmbedder, RunIndex
from knowledge.search_space import CPU_SPACE, SPACE, TrainConfig
from knowledge.sweeps.objective import suggest_config
from tests.knowledge.recommend_fixtures import fitted_learner
from tests.knowledge.synthetic_runs import synthetic_records

META = from_traits(n_instances=1500, n_classes=3, imbalance_ratio=2.0, height=128, modality="ct")
K = 4


@pytest.fixture(scope="module")
def rec() -> Recommendation:
    clear_cache()
    index = RunIndex.build(synthetic_records(per_dataset=12), HashingEmbedder(256), embed_text=False)
    out = recommend(META, top_k=K, learner=fitted_learner(), index=index)
    clear_cache()
    return out


def _with_configs(rec: Recommendation, configs: list[TrainConfig]) -> Recommendation:
    """`rec` whose top configs are `configs` (ranks 1..n, predictions of rec's best)."""
    top = [rec.best.model_copy(update={"config": c, "rank": i + 1}) for i, c in enumerate(configs)]
    return rec.model_copy(update={"top": top, "best": top[0]})


def _run_enqueued(study: optuna.Study, space, n: int) -> list[TrainConfig]:
    """Run `n` trials of `study` with the sweeps' own objective code (`suggest_config`)."""
    drawn: list[TrainConfig] = []

    def objective(trial: optuna.Trial) -> float:
        config = suggest_config(trial, space, lambda model: True)
        drawn.append(config)
        return 0.5

    study.optimize(objective, n_trials=n)
    return drawn


@pytest.fixture(autouse=True)
def _quiet_optuna():
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    optuna.logging.set_verbosity(level)


def test_optuna_snippet_enqueues_the_top_k_into_a_real_study(rec) -> None:
    assert len(rec.top) == K and all(not outside_space(r.config, SPACE) for r in rec.top)
    snippet = to_optuna(rec)
    namespace: dict = {}
    exec(compile(snippet, "optuna_warm_start.py", "exec"), namespace)  # creates an in-memory study
    study = namespace["study"]
    assert namespace["WARM_START"] == [trial_params(r.config, SPACE) for r in rec.top]
    waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    assert len(waiting) == K
    drawn = _run_enqueued(study, SPACE, K + 2)  # two more: the sampler's own
    assert drawn[:K] == [r.config for r in rec.top]
    trials = study.get_trials(deepcopy=False)
    assert [t.params for t in trials[:K]] == namespace["WARM_START"]
    assert len(trials) == K + 2 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)


def test_trial_params_round_trip_including_zero_weight_decay(rec) -> None:
    configs = [rec.top[0].config.model_copy(update={"weight_decay": 0.0}),
               rec.top[0].config.model_copy(update={"weight_decay": 3e-5, "pretrained": False,
                                                    "label_smoothing": 0.1})]
    params = [trial_params(c, SPACE) for c in configs]
    assert params[0]["weight_decay_nonzero"] is False and "weight_decay" not in params[0]
    assert params[1]["weight_decay_nonzero"] is True and params[1]["weight_decay"] == 3e-5
    assert [TrainConfig(**config_from_params(p)) for p in params] == configs
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for p in params:
        study.enqueue_trial(p)
    assert _run_enqueued(study, SPACE, 2) == configs


def test_cpu_space_lists_the_configs_outside_and_enqueues_the_rest(rec) -> None:
    inside = TrainConfig(model="resnet18", resolution=32, lr=3e-3, weight_decay=0.0, batch_size=64,
                         epochs=5, augmentation="strong", label_smoothing=0.05)
    gpu = TrainConfig(model="resnet50", resolution=224, epochs=100, lr=1e-4, weight_decay=1e-2)
    small = rec.best.config.model_copy(update={"model": "mobilenetv3_small_100", "scheme": "linear_probing",
                                               "resolution": 64, "epochs": 8, "lr": 1e-3,
                                               "weight_decay": 1e-4, "batch_size": 128,
                                               "label_smoothing": 0.0})
    mixed = _with_configs(rec, [inside, gpu, small])
    reasons = outside_space(gpu, CPU_SPACE)
    assert any(r.startswith("model: 'resnet50' is not allowed") for r in reasons)
    assert any(r.startswith("epochs: 100") for r in reasons)

    snippet = to_optuna(mixed, space="cpu")
    assert "# 1 of the top configs lie outside the 'cpu' search space" in snippet
    assert "#2 ResNet-50" in snippet and "model: 'resnet50' is not allowed" in snippet
    namespace: dict = {}
    exec(compile(snippet, "optuna_warm_start.py", "exec"), namespace)
    assert len(namespace["WARM_START"]) == 2
    assert _run_enqueued(namespace["study"], CPU_SPACE, 2) == [inside, small]

    data = json.loads(to_json(mixed, space="cpu"))
    assert [c["in_space"] for c in data["configs"]] == [True, False, True]
    assert data["configs"][1]["optuna_params"] is None and data["configs"][1]["outside_space"] == reasons
    ray = json.loads(to_ray(mixed, space="cpu"))
    assert [p["model"] for p in ray["points_to_evaluate"]] == ["resnet18", "mobilenetv3_small_100"]
    assert ray["outside_space"][0]["rank"] == 2 and ray["outside_space"][0]["reasons"] == reasons
    warnings = outside_warnings(mixed, "cpu")
    assert len(warnings) == 1 and warnings[0].startswith("#2 ResNet-50")
    assert outside_warnings(mixed, "full") == []


def test_json_export_has_predictions_flags_and_budget(rec) -> None:
    data = json.loads(export(rec, "json"))
    assert data["search_space"] == "full" and data["budget"] is None and data["budget_text"]
    assert [c["rank"] for c in data["configs"]] == [1, 2, 3, 4]
    for entry, r in zip(data["configs"], rec.top):
        assert TrainConfig(**entry["config"]) == r.config
        assert entry["predicted_acc"] == pytest.approx(r.predicted_acc, abs=1e-4)
        assert entry["acc_lo"] <= entry["predicted_acc"] <= entry["acc_hi"]
        assert entry["supported"] == r.supported and entry["extrapolated"] == r.extrapolated
        assert entry["optuna_params"] == trial_params(r.config, SPACE) and entry["in_space"]
    budgeted = rec.model_copy(update={"budget": rec.budget or _budget()})
    assert json.loads(to_json(budgeted))["budget"]["device"] == "t4"


def _budget():
    from knowledge.metalearner.budget import Budget

    return Budget(device="t4", max_seconds=3600)


def test_ray_export_round_trips(rec) -> None:
    text = export(rec, "ray")
    data = json.loads(text)
    assert json.loads(json.dumps(data)) == data
    points = data["points_to_evaluate"]
    assert [TrainConfig(**p) for p in points] == [r.config for r in rec.top]
    assert data["outside_space"] == [] and set(data["param_space"]) == set(SPACE.params)
    assert data["param_space"]["lr"] == "tune.loguniform(1e-06, 1.0)"
    assert data["param_space"]["epochs"] == "tune.randint(1, 301)"
    compile(data["snippet"], "ray_snippet.py", "exec")  # Ray is not installed: valid Python only
    assert "points_to_evaluate=points" in data["snippet"]


def _train_command() -> typer.Typer:
    from ui.cli.train import train

    app = typer.Typer()
    app.command()(train)
    return app


def test_command_lines_parse_with_metallmix_train(rec) -> None:
    command = typer.main.get_command(_train_command())
    script = to_commands(rec, dataset="medmnist:pneumoniamnist?n=500")
    lines = [line for line in script.splitlines() if line and not line.startswith("#")]
    assert len(lines) == K
    for line, r in zip(lines, rec.top):
        args = shlex.split(line)
        assert args[:2] == ["metallmix", "train"]
        ctx = command.make_context("train", args[2:])  # parses every option, runs nothing
        p = ctx.params
        assert p["dataset"] == "medmnist:pneumoniamnist?n=500"
        parsed = {"model": p["model"], "pretrained": p["pretrained"], "scheme": p["scheme"].value,
                  "resolution": p["resolution"], "optimizer": p["optimizer"].value, "lr": p["lr"],
                  "weight_decay": p["weight_decay"], "batch_size": p["batch_size"],
                  "epochs": p["epochs"], "augmentation": p["augmentation"].value,
                  "label_smoothing": p["label_smoothing"]}
        assert TrainConfig(**parsed) == r.config
    assert "replace DATASET" in to_commands(rec)  # no dataset: a placeholder, said so


def test_command_export_lists_what_the_launcher_cannot_train(rec) -> None:
    knn = rec.best.config.model_copy(update={"scheme": "knn"})
    alex = rec.best.config.model_copy(update={"model": "alexnet"})
    script = to_commands(_with_configs(rec, [rec.best.config, knn, alex]))
    assert [line.split()[4] for line in script.splitlines() if line.startswith("metallmix train")] == [
        rec.best.config.model]
    assert "#2" in script and "'knn' is not trained by the launcher" in script
    assert "#3" in script and "alexnet has no timm model" in script
    assert train_args(rec.best.config)[2] == "DATASET"


def test_bad_formats_and_spaces_are_clear_errors(rec) -> None:
    assert check_formats(["optuna,json", "json", " Ray "]) == ["optuna", "json", "ray"]
    with pytest.raises(ConfigError, match="unknown export format 'yaml'; allowed: optuna, ray, json, command"):
        check_formats(["yaml"])
    with pytest.raises(ConfigError, match="no export format"):
        check_formats([""])
    with pytest.raises(ConfigError, match="unknown search space 'gpu'; known: full, cpu"):
        get_space("gpu")
    with pytest.raises(ConfigError, match="unknown export format"):
        export(rec, "toml")
    assert set(FORMATS) == set(FILE_NAMES)


def test_write_atomic_and_export_paths(tmp_path) -> None:
    target = tmp_path / "sub" / "out.json"
    assert write_atomic(target, "one\n") == target and target.read_text() == "one\n"
    write_atomic(target, "two\n")
    assert target.read_text() == "two\n"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["out.json"]  # no temporary left
    assert export_paths(target, ["json"]) == {"json": target}
    assert export_paths(tmp_path, ["json"]) == {"json": tmp_path / FILE_NAMES["json"]}
    both = export_paths(tmp_path / "dir", ["optuna", "command"])
    assert both == {"optuna": tmp_path / "dir" / FILE_NAMES["optuna"],
                    "command": tmp_path / "dir" / FILE_NAMES["command"]}
    with pytest.raises(ConfigError, match="several formats go into a folder"):
        export_paths(target, ["optuna", "json"])
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot write there"):
        write_atomic(blocker / "out.json", "x")
