"""The local `cheap_classify` model: TF-IDF features and a logistic regression over tickets.

Trained on first use from `data/support_tickets.csv` (a few hundred labelled support tickets
shipped in the package) and kept for the life of the process; training takes well under a
second. Fixed `random_state` and a fixed data order make every process learn the same model.
"""

from __future__ import annotations

import csv
import io
import threading
from dataclasses import dataclass
from importlib import resources
from typing import Any

DATASET = "support_tickets.csv"

_lock = threading.Lock()
_model: Any = None


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float


def load_dataset() -> tuple[list[str], list[str]]:
    """The shipped tickets as (texts, labels), in file order."""
    source = resources.files("tether.foundation.models").joinpath("data", DATASET)
    rows = list(csv.DictReader(io.StringIO(source.read_text(encoding="utf-8"), newline="")))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def build_pipeline() -> Any:
    """An untrained pipeline; `fit(texts, labels)` makes it a classifier."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, strip_accents="unicode"),
        LogisticRegression(C=10.0, max_iter=2000, random_state=0),
    )


def _trained() -> Any:
    global _model
    with _lock:
        if _model is None:
            texts, labels = load_dataset()
            _model = build_pipeline().fit(texts, labels)
        return _model


def labels() -> list[str]:
    return [str(c) for c in _trained().classes_]


def classify(text: str) -> Prediction:
    model = _trained()
    probabilities = model.predict_proba([text])[0]
    best = int(probabilities.argmax())
    return Prediction(label=str(model.classes_[best]), confidence=float(probabilities[best]))
