#!/usr/bin/env bash
# The eval gate as CI runs it, and as anyone runs it locally before a push:
#   scripts/eval_gate.sh [BASE]          (BASE: a git ref, default origin/main)
# Scores every workflow's golden cases on BASE's code (a throwaway git worktree) and on the
# working tree, into one throwaway eval database, then gates the working tree against BASE
# (exit 1 on a regression in any cohort), and replays the last 50 recorded runs of
# $TETHER_REPLAY_DATABASE_URL, if set, against the working tree's code.
set -euo pipefail
base="${1:-origin/main}"
root="$(git rev-parse --show-toplevel)"
python="${PYTHON:-$root/.venv/bin/python}"
workflows=(research_report support_triage)
tmp="$(mktemp -d)"
cleanup() { git -C "$root" worktree remove --force "$tmp/base" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT

export TETHER_EVALS_DATABASE_URL="sqlite:///$tmp/evals.db" TETHER_TRACE=none
git -C "$root" worktree add --detach "$tmp/base" "$base" >/dev/null 2>&1
for w in "${workflows[@]}"; do
    (cd "$tmp/base" && TETHER_DATA_DIR="$tmp/base-data" PYTHONPATH="$tmp/base/src:$tmp/base" \
        "$python" -m tether.cli eval run "$w" --ref base)
    (cd "$root" && TETHER_DATA_DIR="$tmp/data" PYTHONPATH="$root/src:$root" \
        "$python" -m tether.cli eval run "$w" --ref candidate)
done
(cd "$root" && "$python" -m tether.cli eval gate --baseline base --candidate candidate)
if [ -n "${TETHER_REPLAY_DATABASE_URL:-}" ]; then
    (cd "$root" && TETHER_DATABASE_URL="$TETHER_REPLAY_DATABASE_URL" TETHER_DATA_DIR="$tmp/data" \
        "$python" -m tether.cli replay --last 50)
fi
