"""The encoder used by the duplicate and answerable checks, and its thresholds.

The sentence-embedding model (grader.embedding) is the default. If it is not installed, a lexical
encoder (hashed words, word pairs and character trigrams) keeps expansion working offline, with
its own thresholds and a notice saying duplicates are then judged on wording, not meaning.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from grader.expand.checks import CheckLimits, Encoder
from grader.expand.proposals import normalise

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

LEXICAL_LIMITS = CheckLimits(duplicate_reject=0.85, duplicate_flag=0.7, answerable_flag=0.0)
"""Thresholds for the lexical fallback (hashed n-gram vectors are less forgiving of paraphrase)."""

_DIMENSIONS = 2048
_WORD = re.compile(r"\w+")


class LexicalEncoder:
    """Hashed bag of words, word pairs and character trigrams, L2-normalised."""

    name = "lexical"

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        import numpy as np

        out = np.zeros((len(texts), _DIMENSIONS), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _WORD.findall(normalise(text))
            features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
            joined = f" {' '.join(words)} "
            features += [joined[i : i + 3] for i in range(len(joined) - 2)]
            for feature in features:
                digest = hashlib.blake2b(feature.encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % _DIMENSIONS] += 1.0
            norm = float(np.linalg.norm(out[row]))
            if norm:
                out[row] /= norm
        return out


def load_encoder(notice: Callable[[str], None]) -> tuple[Encoder, CheckLimits]:
    """The sentence encoder with default limits, else the lexical fallback (saying so once)."""
    from grader.errors import GraderError

    try:
        from grader.embedding import SentenceEncoder

        return SentenceEncoder.load(), CheckLimits()
    except (ImportError, GraderError) as exc:
        notice(
            f"note: sentence embeddings unavailable ({exc}); "
            "duplicate checks compare wording instead of meaning"
        )
        return LexicalEncoder(), LEXICAL_LIMITS
