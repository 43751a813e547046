"""The local `summarize` model: extractive, the top sentences by term frequency, in order.

Each sentence scores the mean document frequency of its content words (so long sentences don't
win by length alone); the best ones are returned in their original order, within a word budget.
"""

from __future__ import annotations

from tether.foundation.models.local.text import sentences, term_frequencies


def summarize(text: str, max_sentences: int = 3, max_words: int | None = None) -> str:
    # a sentence said twice (sources quoted by several answers) is worth saying once
    parts = list(dict.fromkeys(sentences(text)))
    if len(parts) <= max_sentences:
        return " ".join(parts)
    document = term_frequencies(text)

    def score(index: int) -> float:
        terms = term_frequencies(parts[index])
        if not terms:
            return 0.0
        return sum(document[t] for t in terms) / len(terms)

    best = sorted(range(len(parts)), key=lambda i: (-score(i), i))[:max_sentences]
    chosen: list[str] = []
    budget = max_words
    for index in sorted(best):
        length = len(parts[index].split())
        if budget is not None and chosen and length > budget:
            break
        chosen.append(parts[index])
        if budget is not None:
            budget -= length
    return " ".join(chosen)
