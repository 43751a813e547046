"""The local `judge` model: a rubric grader by term coverage, answering in JSON.

It reads labelled sections from the last user message (`Question:`, `Answer:`, and one of
`Reference:`, `Expected:`, `Criteria:`, `Rubric:`), and scores the share of the reference's
content words that the answer covers. Without a reference the question's words are the rubric;
without an `Answer:` section the previous assistant turn is graded. It is a different family
from the local agent on purpose (INV-3): it shares none of the agent's rules.
"""

from __future__ import annotations

import json
import re

from tether.foundation.models.contract import ModelRequest
from tether.foundation.models.local.text import stems

PASS_MARK = 0.5
_LABELS = {
    "question": "question",
    "answer": "answer",
    "response": "answer",
    "reference": "reference",
    "expected": "reference",
    "criteria": "reference",
    "rubric": "reference",
}
_SECTION = re.compile(rf"^\s*({'|'.join(_LABELS)})\s*:\s*", re.I | re.M)


def sections(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    marks = list(_SECTION.finditer(text))
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = following.start() if following else len(text)
        key = _LABELS[mark.group(1).lower()]
        found.setdefault(key, text[mark.end() : end].strip())
    return found


def grade(request: ModelRequest) -> str:
    """A JSON object: score in [0, 1], passed, reason, and the rubric words covered or missed."""
    users = [m for m in request.messages if m.role == "user"]
    text = users[-1].content if users else ""
    parts = sections(text)
    answer = parts.get("answer")
    if answer is None:
        previous = [m.content for m in request.messages if m.role == "assistant" and m.content]
        answer = previous[-1] if previous else ""
    rubric = stems(parts.get("reference") or parts.get("question") or "")
    covered = sorted(rubric & stems(answer))
    missing = sorted(rubric - stems(answer))
    if not answer.strip():
        score, reason = 0.0, "the answer is empty"
    elif not rubric:
        score, reason = 0.0, "no reference, criteria or question to grade against"
    else:
        score = round(len(covered) / len(rubric), 3)
        reason = f"covers {len(covered)} of {len(rubric)} rubric terms"
    return json.dumps(
        {
            "score": score,
            "passed": score >= PASS_MARK,
            "reason": reason,
            "covered": covered,
            "missing": missing,
        },
        sort_keys=True,
    )
