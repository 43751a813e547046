#!/usr/bin/env bash
# The empty-diff receipt (W6): the foundation holds when a workflow ships without touching it.
#   scripts/empty-diff.sh FROM TO
# Prints the diff of src/tether/ between the two commits and exits 0 when it is empty; when it
# is not, exits 1 naming each package the diff touched (tether.foundation.tools, tether.cli...).
# Exit 2: wrong usage, or a commit this clone does not have. docs/empty-diff.txt records the
# range of incident_postmortem.
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: scripts/empty-diff.sh FROM TO" >&2
    exit 2
fi
root="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
for rev in "$1" "$2"; do
    if ! git -C "$root" rev-parse --verify --quiet "$rev^{commit}" >/dev/null; then
        echo "error: $rev is not a commit in this clone (a shallow clone? fetch its history)" >&2
        exit 2
    fi
done
changed="$(git -C "$root" diff --name-only "$1" "$2" -- src/tether/)"
if [ -z "$changed" ]; then
    echo "empty: src/tether/ is the same at $1 and $2"
    exit 0
fi
git -C "$root" --no-pager diff "$1" "$2" -- src/tether/
# src/tether/foundation/<iface>/... -> tether.foundation.<iface>; src/tether/<pkg>/... ->
# tether.<pkg>; src/tether/<module>.py -> tether.<module>
leaked="$(awk -F/ '{
    if ($3 == "foundation" && NF > 4) print "tether.foundation." $4
    else if (NF > 3) print "tether." $3
    else { sub(/\.py$/, "", $3); print "tether." $3 }
}' <<<"$changed" | sort -u | paste -sd, - | sed 's/,/, /g')"
echo "error: the foundation changed between $1 and $2: $leaked" >&2
exit 1
