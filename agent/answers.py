"""The answers the graph writes itself for the follow-up kinds of `agent.intents`, from the facts
the tools returned (`agent.facts.ranked_facts` dicts and explain_config outputs): every number is a
tool's number, every comparison contrasts settings that differ between the compared configs, and
the dataset's traits (the same for both configs) are never presented as a difference.
"""

from __future__ import annotations

from typing import Any

from agent.commands import command_notes, train_command

# ranked-facts key -> how the comparison names it (the settings that define a config)
SETTINGS: tuple[tuple[str, str], ...] = (
    ("model_name", "model"), ("pretrained", "weights"), ("scheme", "scheme"),
    ("resolution_px", "input size"), ("optimizer", "optimizer"), ("lr", "learning rate"),
    ("batch_size", "batch size"), ("epochs", "epochs"), ("augmentation", "augmentation"),
    ("weight_decay", "weight decay"), ("label_smoothing", "label smoothing"))
# explain_config factor label -> the setting it measures (dataset-trait factors are left out)
FACTOR_SETTING = {"model": "model", "training scheme": "scheme", "input resolution": "input size",
                  "ImageNet-pretrained weights": "weights", "lr": "learning rate",
                  "epochs": "epochs", "batch size": "batch size", "optimizer": "optimizer",
                  "augmentation (0 none, 1 light, 2 strong)": "augmentation",
                  "weight_decay": "weight decay", "label smoothing": "label smoothing"}
_SCHEME = {"end_to_end": "fine-tuned end to end", "linear_probing": "linear probe",
           "knn": "k-NN on frozen features"}


def setting_text(key: str, value: Any) -> str:
    if key == "pretrained":
        return "pretrained" if value else "from scratch"
    if key == "scheme":
        return _SCHEME.get(str(value), str(value))
    if key == "resolution_px":
        return f"{value} px"
    if key in ("lr", "weight_decay"):
        return f"{value:.0e}" if isinstance(value, float) and value < 0.01 else f"{value:g}"
    return str(value)


def config_text(f: dict[str, Any]) -> str:
    """'DenseNet-121 (pretrained, fine-tuned end to end, 224 px, lr 1e-04, batch 64, 100 epochs)'."""
    return (f"**{f['model_name']}** ({setting_text('pretrained', f['pretrained'])}, "
            f"{setting_text('scheme', f['scheme'])}, {f['resolution_px']} px, "
            f"{f['optimizer']} lr {setting_text('lr', f['lr'])}, batch {f['batch_size']}, "
            f"{f['epochs']} epochs)")


def outcome_text(f: dict[str, Any]) -> str:
    lo, hi = f["interval_80_pct"]
    return (f"predicted accuracy {f['predicted_accuracy_pct']} % (80 % interval {lo}–{hi} %), "
            f"training time ~{f['training_time']}")


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(setting, a's value, b's value) for each setting that differs between two configs."""
    return [(name, setting_text(key, a.get(key)), setting_text(key, b.get(key)))
            for key, name in SETTINGS if a.get(key) != b.get(key)]


def _factor_points(explained: dict[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for factor in (explained or {}).get("factors") or []:
        setting = FACTOR_SETTING.get(str(factor.get("factor")))
        if setting:
            out[setting] = factor.get("points")
    return out


def _points(value: float | None) -> str:
    return "not among its strongest factors" if value is None else f"{value:+.1f} points"


def compare_answer(pick: dict[str, Any], other: dict[str, Any], *,
                   pick_explained: dict[str, Any] | None = None,
                   other_explained: dict[str, Any] | None = None) -> str:
    """"Why X and not Y?": both configs' predictions and the settings that differ, with each
    one's SHAP contribution where explain_config gave it."""
    lines = [f"I recommend {config_text(pick)}: {outcome_text(pick)}.",
             f"With the same settings, {config_text(other)}: {outcome_text(other)}."]
    diff = differences(pick, other)
    if diff:
        pa, pb = _factor_points(pick_explained), _factor_points(other_explained)
        parts = []
        for setting, va, vb in diff:
            text = f"{setting}: {va} vs {vb}"
            if setting in pa or setting in pb:
                text += (f" (SHAP: {_points(pa.get(setting))} for {pick['model_name']}, "
                         f"{_points(pb.get(setting))} for {other['model_name']})")
            parts.append(text)
        lines.append("What differs between the two: " + "; ".join(parts) + ".")
    mine, theirs = pick["predicted_accuracy_pct"], other["predicted_accuracy_pct"]
    if mine > theirs:
        lines.append(f"So {pick['model_name']} is predicted higher: {mine} %.\n"
                     f"{other['model_name']} is predicted {theirs} %.\n"
                     "Your dataset's traits are the same for both, so they are not a reason to "
                     "prefer either.")
    elif mine < theirs:
        lines.append(f"{pick['model_name']} is predicted {mine} %.\n"
                     f"{other['model_name']} is predicted higher: {theirs} %.\n"
                     "The ranking also weighs how well each config is backed by recorded runs "
                     f"and its training time, and puts {pick['model_name']} first.")
    else:
        lines.append("Both are predicted the same; the ranking breaks the tie by the evidence "
                     "behind each config and the training time.")
    for f in (pick, other):
        if f.get("evidence"):
            lines.append(f"{f['model_name']}: {f['evidence']}.")
    return "\n\n".join(lines)


def unknown_model_answer(names: list[str], pick: dict[str, Any], known: list[str]) -> str:
    """A model outside the search space: say so instead of guessing (`known`: models of this
    conversation's tool outputs the user can ask about instead)."""
    text = (f"{', '.join(names)} is not among the models I have training runs of, so I cannot "
            f"predict how it would do on your data. I recommend {config_text(pick)}: "
            f"{outcome_text(pick)}.")
    if known:
        text += f" I can compare it with {', '.join(known)}: ask \"why not {known[0]}?\"."
    return text


_PARAM_WORDS = {"lr": ("learning rate", "lr"), "batch_size": ("batch size", "batch_size"),
                "epochs": ("epochs", "epochs"), "optimizer": ("optimizer", "optimizer"),
                "weight_decay": ("weight decay", "weight_decay"),
                "augmentation": ("augmentation", "augmentation"),
                "resolution": ("input size", "resolution_px")}


def hyperparameter_answer(f: dict[str, Any], params: list[str], *, is_pick: bool,
                          asked_model: str | None = None) -> str:
    """"What learning rate for a pretrained ResNet-50?": the best-ranked config with that model
    (the ranking constrained to it), its values for the asked settings and its support."""
    asked = [p for p in params if p in _PARAM_WORDS] or ["lr", "batch_size", "epochs"]
    values = "; ".join(f"{_PARAM_WORDS[p][0]} {setting_text(_PARAM_WORDS[p][1], f.get(_PARAM_WORDS[p][1]))}"
                       for p in asked)
    head = ("In the config I recommend" if is_pick else
            f"For {asked_model or f['model_name']} on your data, the best-ranked config")
    lines = [f"{head}, {config_text(f)}: {values}.", f"With these settings: {outcome_text(f)}."]
    if f.get("evidence"):
        lines.append(f"Evidence: {f['evidence']}.")
        if str(f["evidence"]).startswith("not backed") and not is_pick:
            lines.append(f"No recorded run backs this config, so its settings are those of recorded "
                         f"runs of other models with {f['model_name']} put in: treat them as a "
                         "starting point to check with a short run, not as a tuned value.")
    return "\n\n".join(lines)


def device_time_answer(same: dict[str, Any], before: dict[str, Any], device_label: str,
                       memory: str | None = None) -> str:
    """"How long on a T4?": the SAME config re-costed on that device."""
    lines = [f"The same config, {config_text(same)}, is predicted to take "
             f"~{same['training_time']}, against ~{before['training_time']} as planned before."]
    if same.get("batch_size") != before.get("batch_size"):
        lines.append(f"On the {device_label} its batch is {same['batch_size']} (instead of "
                     f"{before['batch_size']}) to fit the card's memory.")
    if memory:
        lines.append(f"Memory: {memory}.")
    lines.append(f"Its predicted accuracy does not change with the device: "
                 f"{same['predicted_accuracy_pct']} %.")
    return "\n\n".join(lines)


def command_answer(f: dict[str, Any], dataset: str | None, *, time_budget_s: float | None = None,
                   modality: str | None = None) -> str:
    """"Give me the command": the real `metallmix train` line for the presented config."""
    config = {"model": f["model"], "pretrained": f["pretrained"], "scheme": f["scheme"],
              "resolution": f["resolution_px"], "optimizer": f["optimizer"], "lr": f["lr"],
              "weight_decay": f["weight_decay"], "batch_size": f["batch_size"],
              "epochs": f["epochs"], "augmentation": f["augmentation"],
              "label_smoothing": f["label_smoothing"]}
    line = train_command(config, dataset, time_budget_s=time_budget_s, modality=modality)
    lines = [f"To train {config_text(f)}:", f"```bash\n{line}\n```"]
    lines += [f"- {n}" for n in command_notes(config, dataset)]
    lines.append("- or say **launch it** here, and confirm with **yes**, to train it now.")
    return "\n".join(lines)


__all__ = ["command_answer", "compare_answer", "config_text", "device_time_answer", "differences",
           "hyperparameter_answer", "outcome_text", "setting_text", "unknown_model_answer"]
