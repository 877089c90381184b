"""Fit and cross-validate the offline grader's calibrated model on human-graded answers.

    python -m grader.calibration fit   # writes grader/data/offline_calibration.json
    python -m grader.calibration cv    # grouped k-fold, questions held out, per-dataset figures

The model is a logistic regression on the features of `grader.offline_features`, fitted with soft
targets (the human grade in [0, 1]) and equal total weight per dataset. Its probability is mapped
monotonically to a score so that two probability cut points, chosen to maximise the mean per-dataset
macro-F1 of the verdicts, land on the verdict thresholds (0.35 partial, 0.8 correct).
Training data: `../shared/data/*.jsonl`, training splits only. Embeddings are cached on disk under
`$GRADER_HOME/cache/calibration/` (one file per model checksum), never committed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from grader.models import CORRECT_AT, PARTIAL_AT, verdict_for_score

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from grader.embedding import SentenceEncoder
    from grader.offline_scoring import FeatureSet

    Array = npt.NDArray[np.float64]

CALIBRATION_FILE = Path(__file__).parent / "data" / "offline_calibration.json"
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
L2 = 1.0
FOLDS = 5


class Calibration(BaseModel):
    """The offline grader's fitted model, shipped as JSON in the package."""

    model_config = ConfigDict(extra="forbid")

    version: int = 1
    embedding_model: str
    """Embedding model the features were computed with."""
    features: list[str]
    """Feature names, in column order."""
    mean: list[float]
    """Per-feature mean used for standardisation."""
    scale: list[float]
    """Per-feature standard deviation used for standardisation."""
    weights: list[float]
    """Logistic-regression weights on the standardised features."""
    bias: float
    partial_cut: float = Field(ge=0, le=1)
    """Probability mapped to the partial threshold."""
    correct_cut: float = Field(ge=0, le=1)
    """Probability mapped to the correct threshold."""
    trained_on: dict[str, int] = Field(default_factory=dict)
    """Answers per dataset used for fitting."""
    note: str = ""

    def probability(self, features: Array) -> Array:
        import numpy as np

        z = (features - np.asarray(self.mean)) / np.asarray(self.scale)
        logits = z @ np.asarray(self.weights) + self.bias
        out: Array = 1.0 / (1.0 + np.exp(-logits))
        return out

    def score(self, probability: Array) -> Array:
        """Map probabilities to scores: monotone, cut points onto the verdict thresholds."""
        import numpy as np

        xs = [0.0, self.partial_cut, self.correct_cut, 1.0]
        ys = [0.0, PARTIAL_AT, CORRECT_AT, 1.0]
        out: Array = np.interp(probability, xs, ys)
        return out


def calibration_hash(path: Path = CALIBRATION_FILE) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def load_calibration(path: Path = CALIBRATION_FILE) -> Calibration:
    return Calibration.model_validate_json(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Example:
    dataset: str
    question_id: str
    question: str
    reference: str
    answer: str
    gold: float


def load_examples(data_dir: Path) -> list[Example]:
    """Training-split answers of every `*.jsonl` in `data_dir` (other splits are skipped)."""
    examples: list[Example] = []
    for path in sorted(data_dir.glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                row = json.loads(line)
                if row.get("split", "train") != "train":
                    continue
                examples.append(
                    Example(
                        dataset=str(row["dataset"]),
                        question_id=str(row["question_id"]),
                        question=row["question"],
                        reference=row["reference_answer"],
                        answer=row["student_answer"],
                        gold=max(0.0, min(1.0, float(row["score"]) / float(row["score_max"]))),
                    )
                )
    return examples


class DiskCachedEncoder:
    """Wraps a SentenceEncoder with an on-disk text -> vector cache (an .npz file)."""

    def __init__(self, encoder: SentenceEncoder, path: Path) -> None:
        import numpy as np

        self._encoder = encoder
        self._path = path
        self._vectors: dict[str, Any] = {}
        if path.exists():
            with np.load(path, allow_pickle=False) as data:
                for text, vector in zip(data["texts"], data["vectors"], strict=True):
                    self._vectors[str(text)] = vector

    def __call__(self, texts: Sequence[str]) -> Any:
        import numpy as np

        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            print(f"encoding {len(missing)} texts (cached: {len(self._vectors)})", file=sys.stderr)
            for start in range(0, len(missing), 512):
                batch = missing[start : start + 512]
                for text, vector in zip(batch, self._encoder.encode(batch), strict=True):
                    self._vectors[text] = vector
            self._save()
        return np.stack([self._vectors[t] for t in texts]).astype(np.float32)

    def _save(self) -> None:
        import numpy as np

        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp.npz")
        texts = list(self._vectors)
        np.savez(tmp, texts=np.array(texts), vectors=np.stack([self._vectors[t] for t in texts]))
        tmp.replace(self._path)


def example_features(examples: Sequence[Example], cache_dir: Path) -> FeatureSet:
    from grader.embedding import MODEL_SHA256, SentenceEncoder
    from grader.offline_features import card_text
    from grader.offline_scoring import compute_features
    from grader.rubric import derive_key_points
    from grader.spelling import Respeller

    encoder = SentenceEncoder.load()
    encode = DiskCachedEncoder(encoder, cache_dir / f"embeddings-{MODEL_SHA256[:12]}.npz")
    cards = {}
    for ex in examples:
        key = (ex.dataset, ex.question_id)
        if key not in cards:
            cards[key] = card_text(ex.question, ex.reference, None, derive_key_points(ex.reference))
    return compute_features(
        encode,
        Respeller(encoder.known_words()),
        [(cards[(ex.dataset, ex.question_id)], ex.answer) for ex in examples],
    )


def combined_probability(calibration: Calibration, features: FeatureSet) -> Array:
    import numpy as np

    from grader.offline_scoring import combine

    return np.array([s.probability for s in combine(calibration, features)])


def _sample_weights(datasets: Sequence[str]) -> Array:
    import numpy as np

    names, codes, counts = np.unique(np.asarray(datasets), return_inverse=True, return_counts=True)
    weights: Array = (len(datasets) / len(names)) / counts[codes]
    return weights


def fit_logistic(x: Array, y: Array, weights: Array, l2: float = L2) -> tuple[Array, float]:
    """Weighted L2 logistic regression with soft targets, by Newton's method."""
    import numpy as np

    n, d = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(design @ theta)))
        gradient = design.T @ (weights * (p - y)) + penalty * theta
        hessian = (design * (weights * p * (1 - p))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return theta[:-1], float(theta[-1])


def _verdicts(scores: Array) -> list[str]:
    return [verdict_for_score(float(s)) for s in scores]


def choose_cuts(probability: Array, gold: Array, datasets: Sequence[str]) -> tuple[float, float]:
    """Probability cut points maximising the mean per-dataset macro-F1 of verdicts."""
    import numpy as np

    from grader.metrics import macro_f1

    gold_verdicts = np.asarray(_verdicts(gold))
    groups = [np.flatnonzero(np.asarray(datasets) == name) for name in sorted(set(datasets))]
    grid = np.round(np.arange(0.05, 0.96, 0.025), 3)
    best = (-1.0, 0.35, 0.8)
    for partial in grid:
        for correct in grid[grid > partial]:
            pred = np.where(
                probability >= correct,
                "correct",
                np.where(probability >= partial, "partial", "incorrect"),
            )
            value = float(
                np.mean([macro_f1(list(gold_verdicts[g]), list(pred[g])) or 0.0 for g in groups])
            )
            if value > best[0]:
                best = (value, float(partial), float(correct))
    return best[1], best[2]


def fit(
    features: FeatureSet, examples: Sequence[Example], rows: Sequence[int] | None = None
) -> Calibration:
    """Fit on `rows` (default: all) of `features`; cut points chosen on the combined
    (whole answer + per point + contradiction) probability of those rows."""
    import numpy as np

    from grader.embedding import MODEL_NAME
    from grader.offline_features import FEATURE_NAMES

    idx = np.arange(len(examples)) if rows is None else np.asarray(rows)
    x = features.whole[idx]
    gold = np.array([examples[int(i)].gold for i in idx])
    datasets = [examples[int(i)].dataset for i in idx]
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    weights, bias = fit_logistic((x - mean) / scale, gold, _sample_weights(datasets))
    calibration = Calibration(
        embedding_model=MODEL_NAME,
        features=list(FEATURE_NAMES),
        mean=[float(v) for v in mean],
        scale=[float(v) for v in scale],
        weights=[float(v) for v in weights],
        bias=bias,
        partial_cut=0.35,
        correct_cut=0.8,
    )
    combined = combined_probability(calibration, features)[idx]
    partial_cut, correct_cut = choose_cuts(combined, gold, datasets)
    counts: dict[str, int] = {}
    for name in datasets:
        counts[name] = counts.get(name, 0) + 1
    return calibration.model_copy(
        update={"partial_cut": partial_cut, "correct_cut": correct_cut, "trained_on": counts}
    )


def grouped_folds(examples: Sequence[Example], k: int = FOLDS, seed: int = 0) -> list[Any]:
    """Fold index per example; all answers to one (dataset, question) share a fold."""
    import numpy as np

    groups = sorted({(ex.dataset, ex.question_id) for ex in examples})
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(groups))
    fold_of = {groups[i]: rank % k for rank, i in enumerate(order)}
    return [np.array([fold_of[(ex.dataset, ex.question_id)] for ex in examples])]


class DatasetFigures(BaseModel):
    """Cross-validated figures on one dataset (every answer predicted by a model that never saw
    its question)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str
    n: int
    questions: int
    accuracy: float | None
    macro_f1: float | None
    pearson: float | None
    qwk: float | None
    false_accept_rate: float | None
    majority_accuracy: float | None
    """Accuracy of always answering the dataset's most common verdict, for comparison."""


def cross_validate(
    features: FeatureSet, examples: Sequence[Example], k: int = FOLDS, seed: int = 0
) -> tuple[list[DatasetFigures], Array]:
    import numpy as np

    from grader import metrics
    from grader.offline_scoring import combine, final_score

    (folds,) = grouped_folds(examples, k, seed)
    scores = np.zeros(len(examples))
    for fold in range(k):
        train = np.flatnonzero(folds != fold)
        test = np.flatnonzero(folds == fold)
        model = fit(features, examples, [int(i) for i in train])
        scored = combine(model, features)
        scores[test] = [final_score(model, scored[int(i)])[0] for i in test]
    figures: list[DatasetFigures] = []
    for name in sorted({ex.dataset for ex in examples}):
        idx = [i for i, ex in enumerate(examples) if ex.dataset == name]
        gold = [examples[i].gold for i in idx]
        pred = [float(scores[i]) for i in idx]
        gold_v, pred_v = _verdicts(np.array(gold)), _verdicts(np.array(pred))
        majority = max(set(gold_v), key=gold_v.count)
        figures.append(
            DatasetFigures(
                dataset=name,
                n=len(idx),
                questions=len({examples[i].question_id for i in idx}),
                accuracy=metrics.accuracy(gold_v, pred_v),
                macro_f1=metrics.macro_f1(gold_v, pred_v),
                pearson=metrics.pearson(gold, pred),
                qwk=metrics.quadratic_weighted_kappa(
                    metrics.to_levels(gold), metrics.to_levels(pred), metrics.QWK_LEVELS
                ),
                false_accept_rate=metrics.false_accept_rate(gold_v, pred_v),
                majority_accuracy=metrics.accuracy(gold_v, [majority] * len(gold_v)),
            )
        )
    return figures, scores


def _default_cache_dir() -> Path:
    from grader.paths import grader_home

    return grader_home() / "cache" / "calibration"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.calibration", description=__doc__)
    parser.add_argument("command", choices=["fit", "cv"])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="dir of *.jsonl")
    parser.add_argument("--cache-dir", type=Path, default=None, help="embedding cache dir")
    parser.add_argument("--out", type=Path, default=CALIBRATION_FILE, help="fit: output JSON")
    parser.add_argument("--folds", type=int, default=FOLDS)
    parser.add_argument("--seed", type=int, default=0, help="cv: how questions fall into folds")
    parser.add_argument("--json", action="store_true", help="cv: print figures as JSON")
    args = parser.parse_args(argv)

    examples = load_examples(args.data)
    if not examples:
        print(f"{args.data}: no training examples found", file=sys.stderr)
        return 1
    features = example_features(examples, args.cache_dir or _default_cache_dir())
    if args.command == "fit":
        calibration = fit(features, examples).model_copy(
            update={
                "note": (
                    "Fitted by `python -m grader.calibration fit` on the training splits of "
                    + ", ".join(sorted({ex.dataset for ex in examples}))
                )
            }
        )
        from grader.atomic import write_text_atomic

        write_text_atomic(args.out, calibration.model_dump_json(indent=2) + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
        return 0
    figures, _ = cross_validate(features, examples, args.folds, args.seed)
    if args.json:
        print(json.dumps([f.model_dump() for f in figures], indent=2))
        return 0
    header = "dataset        N     Q  acc    macroF1 pearson QWK    FAR    majority-acc"
    print(
        f"{args.folds}-fold CV (seed {args.seed}), questions held out "
        "(grouped by dataset+question_id)"
    )
    print(header)
    for f in figures:
        print(
            f"{f.dataset:<12} {f.n:>5} {f.questions:>4}  {_fmt(f.accuracy)}  {_fmt(f.macro_f1)}"
            f"   {_fmt(f.pearson)}   {_fmt(f.qwk)}  {_fmt(f.false_accept_rate)}  "
            f"{_fmt(f.majority_accuracy)}"
        )
    return 0


def _fmt(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


if __name__ == "__main__":
    raise SystemExit(main())
