"""A short readable text card per run: what the data was, what was trained, what it achieved.

The cards are embedded for free-text retrieval and shown to the agent and the user as evidence, e.g.

    BloodMNIST (microscopy, 8 classes, 11,959 train images, imbalance 2.7, 28 px RGB) — VGG16
    pretrained, end-to-end, 28 px, AdamW lr 1e-4 wd 1e-4, 100 epochs, batch 64, light aug
    → test acc 94.9% ± 0.5, AUC 99.7% (published: Doerrich et al. 2025)
"""

from __future__ import annotations

import re

from knowledge.metafeatures import MetaFeatures
from knowledge.runs.record import RunRecord
from knowledge.search_space import MODELS, TrainConfig

SCHEME_LABELS = {"end_to_end": "end-to-end", "linear_probing": "linear probe",
                 "knn": "k-NN on frozen features"}
OPTIMIZER_LABELS = {"adamw": "AdamW", "adam": "Adam", "sgd": "SGD"}
AUGMENTATION_LABELS = {"none": "no aug", "light": "light aug", "strong": "strong aug"}
_UPPER_PREFIXES = {"oct"}  # OCTMNIST
_MAX_CITATION = 60


def dataset_label(base_dataset: str, variant: str | None = None) -> str:
    """Display name: 'bloodmnist' -> 'BloodMNIST', 'organamnist' -> 'OrganAMNIST', plus the variant."""
    name = base_dataset
    if name.lower().endswith("mnist") and len(name) > 5:
        prefix = name[:-5].lower()
        if prefix in _UPPER_PREFIXES:
            prefix = prefix.upper()
        elif prefix.startswith("organ") and len(prefix) == 6:  # organa/organc/organs
            prefix = "Organ" + prefix[-1].upper()
        else:
            prefix = prefix.capitalize()
        name = prefix + "MNIST"
    if variant:
        name += " [" + ", ".join(variant.split("&")) + "]"
    return name


def sci(value: float) -> str:
    """Compact scientific notation: 1e-4, 3e-3, 2.5e-4; 0 stays 0."""
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.1e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def data_traits(meta: MetaFeatures) -> list[str]:
    """The known traits of a dataset as short phrases (unknown ones are left out)."""
    parts: list[str] = []
    if meta.modality:
        parts.append(meta.modality)
    if meta.task in ("multi-label", "ordinal-regression"):
        parts.append(meta.task)
    if meta.n_classes is not None:
        parts.append(f"{meta.n_classes} classes")
    if meta.n_instances is not None:
        parts.append(f"{meta.n_instances:,} train images")
    if meta.imbalance_ratio is not None:
        parts.append(f"imbalance {meta.imbalance_ratio:.1f}")
    if meta.height is not None or meta.width is not None:
        h, w = meta.height or meta.width, meta.width or meta.height
        size = f"{h} px" if h == w else f"{h}×{w} px"
        if meta.channels == 1:
            size += " grayscale"
        elif meta.channels == 3:
            size += " RGB"
        parts.append(size)
    elif meta.channels is not None:
        parts.append({1: "grayscale", 3: "RGB"}.get(meta.channels, f"{meta.channels} channels"))
    return parts


def config_text(config: TrainConfig) -> str:
    """The training setup in one phrase."""
    spec = MODELS.get(config.model)
    model = spec.label if spec else config.model
    parts = [f"{model} {'pretrained' if config.pretrained else 'from scratch'}",
             SCHEME_LABELS.get(config.scheme, config.scheme), f"{config.resolution} px"]
    if config.scheme != "knn":  # k-NN has no optimiser, epochs or augmentation
        optimizer = OPTIMIZER_LABELS.get(config.optimizer, config.optimizer)
        parts += [f"{optimizer} lr {sci(config.lr)} wd {sci(config.weight_decay)}",
                  f"{config.epochs} epochs", f"batch {config.batch_size}",
                  AUGMENTATION_LABELS.get(config.augmentation, f"{config.augmentation} aug")]
        if config.label_smoothing > 0:
            parts.append(f"label smoothing {config.label_smoothing:g}")
    return ", ".join(parts)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def outcome_text(record: RunRecord) -> str:
    """What the run achieved (or how it failed)."""
    if record.status != "ok":
        text = f"FAILED ({record.status})"
        if record.error:
            error = " ".join(record.error.split())
            text += ": " + (error[:100] + "…" if len(error) > 100 else error)
        return text
    out = record.outcome
    parts: list[str] = []
    if out.test_acc is not None:
        acc = f"test acc {_pct(out.test_acc)}"
        if out.test_acc_std is not None:
            acc += f" ± {100 * out.test_acc_std:.1f}"
        parts.append(acc)
    elif out.val_acc is not None:
        parts.append(f"val acc {_pct(out.val_acc)}")
    if out.test_auc is not None:
        parts.append(f"AUC {_pct(out.test_auc)}")
    if out.test_f1 is not None:
        parts.append(f"macro-F1 {_pct(out.test_f1)}")
    if out.train_seconds is not None:
        parts.append(f"{out.train_seconds:,.0f} s training")
    return ", ".join(parts) if parts else "no test result"


def short_citation(citation: str) -> str:
    """'S. Doerrich, F. Di Salvo, ..., "Title", Sci. Rep. 15 (2025)' -> 'Doerrich et al. 2025'.

    Short citations are kept; a long one without a recognisable first author and year is cut.
    """
    text = " ".join(citation.split())
    if len(text) <= _MAX_CITATION:
        return text
    first_author = text.split(",")[0].split(" and ")[0].strip()
    year = re.search(r"\b(?:19|20)\d\d\b", text)
    surname = first_author.split()[-1] if first_author else ""
    if year and surname.isalpha() and len(first_author) <= 40:
        many = text.count(",") > 1 or " and " in text
        return f"{surname}{' et al.' if many else ''} {year.group()}"
    return text[:_MAX_CITATION].rstrip() + "…"


def provenance_text(record: RunRecord) -> str:
    """Where the record comes from, in brackets."""
    prov = record.provenance
    if prov.source == "published":
        if not prov.citation:
            return "(published)"
        return f"(published: {short_citation(prov.citation)})"
    parts = ["your run" if prov.source == "user" else "own run"]
    if prov.seed is not None:
        parts.append(f"seed {prov.seed}")
    if prov.device:
        parts.append(prov.device)
    if prov.timestamp:
        parts.append(prov.timestamp[:10])
    return "(" + ", ".join(parts) + ")"


def run_card(record: RunRecord) -> str:
    """One line describing a run: dataset (traits) — config → outcome (provenance)."""
    name = dataset_label(record.base_dataset, record.variant)
    traits = data_traits(record.meta_features)
    head = f"{name} ({', '.join(traits)})" if traits else name
    return f"{head} — {config_text(record.config)} → {outcome_text(record)} {provenance_text(record)}"
