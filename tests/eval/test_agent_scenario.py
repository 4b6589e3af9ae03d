"""Scenario files: the shipped ones load, bad ones fail with one line naming the file and field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eval.agent.loading import load_scenario, load_scenarios, scenario_files, select
from eval.agent.scenario import Scenario, ScenarioError
from eval.agent.workspace import class_sizes, fixture_arrays

GOOD = """\
covers: [complete first message]
persona: someone
truth:
  traits: {n_instances: 100, n_classes: 2, modality: X-ray}
fixtures:
  - {path: "{data}/a.npz", n_train: 20, n_classes: 2}
turns:
  - user: "100 chest x-rays at {data}/a.npz, 2 classes"
    scripted:
      extraction: {n_instances: 100, dataset_path: "{data}/a.npz"}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_shipped_scenarios_load_and_are_unique() -> None:
    scenarios = load_scenarios()
    names = [s.name for s in scenarios]
    assert len(names) == len(set(names)) >= 20
    assert all(s.source and Path(s.source).stem == s.name for s in scenarios)


def test_a_good_file_loads_and_resolves_placeholders(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, "good", GOOD))
    assert scenario.name == "good" and scenario.truth.traits["modality"] == "x-ray"
    assert scenario.expect.recommendation and scenario.tolerance_of("imbalance_ratio") == 0.05
    resolved = scenario.resolved(Path("/d"), Path("/o"))
    assert resolved.turns[0].user == "100 chest x-rays at /d/a.npz, 2 classes"
    assert resolved.fixtures[0].path == "/d/a.npz"
    assert resolved.turns[0].scripted.extraction["dataset_path"] == "/d/a.npz"
    assert isinstance(resolved, Scenario) and scenario.fixtures[0].path == "{data}/a.npz"


@pytest.mark.parametrize(("change", "message"), [
    (("persona: someone", "persona: someone\nmood: happy"), "good.yaml: mood: Extra inputs"),
    (("n_instances: 100, n_classes", "n_images: 100, n_classes"), "truth.traits: unknown trait(s) n_images; known: n_instances"),
    (('- user: "100 chest', '- said: "100 chest'), "turns.0.said: Extra inputs"),
    (("extraction: {n_instances: 100,", "extraction: {images: 100,"),
     "turns.0.scripted.extraction: unknown field(s) images"),
    (('{path: "{data}/a.npz"', '{path: "/etc/a.npz"'), "fixtures.0.path: must start with {data}"),
    (("n_train: 20, n_classes: 2}", "n_train: 20, n_classes: 2, n_val: 1}"),
     "fixtures.0: n_val: 1 is fewer than the 2 classes"),
    (("covers: [complete first message]\n", ""), "covers: Field required"),
    (("turns:\n", "expect: {launch: launched}\nturns:\n"),
     "needs a turn with confirm: true"),
])
def test_bad_files_name_the_file_and_field(tmp_path: Path, change: tuple[str, str],
                                           message: str) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, "good", text))
    assert message in str(info.value) and str(tmp_path / "good.yaml") in str(info.value)
    assert "\n" not in str(info.value)


def test_unreadable_and_misnamed_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"not valid YAML \(line 2\)"):
        load_scenario(write(tmp_path, "broken", "covers: [a]\n  persona: : x\n"))
    with pytest.raises(ScenarioError, match="expected a mapping"):
        load_scenario(write(tmp_path, "list", "- a\n- b\n"))
    with pytest.raises(ScenarioError, match="name: 'other' differs from the file name 'named'"):
        load_scenario(write(tmp_path, "named", "name: other\n" + GOOD))
    with pytest.raises(ScenarioError, match="cannot read scenario"):
        load_scenario(tmp_path / "missing.yaml")


def test_selection_by_names_and_globs(tmp_path: Path) -> None:
    names = ["a-one", "a-two", "b-one"]
    assert select(names, None) == names
    assert select(names, ["b-one,a-*"]) == names  # file order, no duplicates
    assert select(names, ["*-one"]) == ["a-one", "b-one"]
    with pytest.raises(ScenarioError, match="no scenario matches 'c-\\*'; known: a-one"):
        select(names, ["c-*"])
    write(tmp_path, "x-good", GOOD)
    assert [s.name for s in load_scenarios(["x-*"], tmp_path)] == ["x-good"]
    with pytest.raises(ScenarioError, match="scenario folder not found"):
        scenario_files(tmp_path / "nope")


def test_fixture_data_has_the_stated_shape() -> None:
    from eval.agent.scenario import Fixture

    fixture = Fixture(path="{data}/x.npz", n_train=90, n_classes=3, imbalance=4.0, size=8,
                      channels=3, n_val=6, n_test=0)
    arrays = fixture_arrays(fixture)
    assert arrays["train_images"].shape == (90, 8, 8, 3) and "test_images" not in arrays
    counts = np.bincount(arrays["train_labels"].ravel())
    assert counts.sum() == 90 and 3.5 <= counts.max() / counts.min() <= 4.6
    assert np.bincount(arrays["val_labels"].ravel()).tolist() == [2, 2, 2]
    assert class_sizes(10, 2, 1.0) == [5, 5]
