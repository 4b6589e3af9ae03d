"""The retriever's text index built lazily: numeric retrieval never waits for embeddings."""

from __future__ import annotations

import json

from knowledge.retrieval import RunIndex
from tests.knowledge.retrieval_corpus import CountingEmbedder, corpus, make_record, meta_of


def test_lazy_build_embeds_on_first_text_search() -> None:
    records = corpus()
    emb = CountingEmbedder()
    index = RunIndex.build(records, emb, embed_text=False)
    assert index.text_pending and emb.embedded == 0
    assert index.similar_runs(meta_of("dermamnist"), k=1)[0].base_dataset == "dermamnist"
    assert emb.embedded == 0
    eager = RunIndex.build(records, CountingEmbedder())
    assert index.search_text("ultrasound images", k=4) == eager.search_text("ultrasound images", k=4)
    assert not index.text_pending and emb.embedded == len(records) + 1  # the cards + the question


def test_pending_text_is_saved_loaded_and_persisted_once_built(tmp_path) -> None:
    records = corpus()
    directory = tmp_path / "idx"
    emb = CountingEmbedder()
    RunIndex.load_or_build(records, directory, embedder=emb, embed_text=False)
    meta = json.loads((directory / "meta.json").read_text())
    assert emb.embedded == 0 and meta["text_pending"] is True and meta["text_dim"] is None

    loaded = RunIndex.load_or_build(records, directory, embedder=emb, embed_text=False)
    assert loaded.text_pending and emb.embedded == 0
    assert loaded.search_text("chest x-ray", k=1)[0].base_dataset == "pneumoniamnist"
    assert emb.embedded == len(records) + 1
    meta = json.loads((directory / "meta.json").read_text())
    assert meta["text_pending"] is False and meta["text_dim"] == emb.n_features

    again = RunIndex.load(directory, emb)  # the next process finds the text index on disk
    assert not again.text_pending and again.search_text("chest x-ray", k=1) == loaded.search_text(
        "chest x-ray", k=1)
    assert emb.embedded == len(records) + 3  # only the two questions


def test_rebuild_keeps_known_vectors_and_embed_text_completes(tmp_path) -> None:
    records = corpus()
    directory = tmp_path / "idx"
    emb = CountingEmbedder()
    RunIndex.load_or_build(records, directory, embedder=emb)  # eager: every card embedded
    grown = records + [make_record("breastmnist", "resnet18", "knn", acc=0.8)]
    lazy = RunIndex.load_or_build(grown, directory, embedder=emb, embed_text=False)
    assert lazy.text_pending and emb.embedded == len(records)
    saved = RunIndex.load(directory, emb)  # the old card vectors were saved with the pending index
    assert saved.text_pending and len(saved._known_vectors()) == len(records)
    complete = RunIndex.load_or_build(grown, directory, embedder=emb, embed_text=True)
    assert not complete.text_pending and emb.embedded == len(records) + 1  # only the new card
    lazy.add([make_record("dermamnist", "vgg16", acc=0.7)])
    assert lazy.text_pending and len(lazy) == len(grown) + 1
