#!/usr/bin/env bash
# Fails when a tracked file reads, names or links a path outside the clone: users clone the
# repository alone, so nothing may depend on sibling folders or on this machine's layout.
# Patterns: a sibling `shared` folder, three or more `../` in a row (from crates/<x>/<dir> that
# leaves the clone), and absolute paths of the machines the project is built on.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The OpenMetadata schemas keep upstream's relative `$ref`s, which all resolve inside their folder.
named='\.\./shared|shared/(design|contracts)|/work/|/home/[a-z]'
climbing='(\.\./){3,}'
schemas='crates/ingest/tests/contracts/openmetadata/schemas'
hits=$(
  git grep -nIE "$named" -- . ':!scripts/ci/self-contained.sh' ':!Cargo.lock' || true
  git grep -nIE "$climbing" -- . ':!scripts/ci/self-contained.sh' ':!Cargo.lock' ":!$schemas" || true
)
if [ -n "$hits" ]; then
  echo "error: tracked files point outside the clone (a user's clone has no sibling folders):" >&2
  echo "$hits" >&2
  echo "move what they need into the repository (fixtures under the crate's tests/, docs into ARCHITECTURE.md)." >&2
  exit 1
fi
echo "self-contained: no tracked file points outside the clone"
