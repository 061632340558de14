#!/usr/bin/env bash
# The second command: the whole test suite (lint, types, fast tests, then slow end-to-end
# tests). Installs what the tests need: the dev extras and PostgreSQL's server binaries.
set -euo pipefail
KB_EXTRAS=dev source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

have_pg() { command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
if ! have_pg; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing PostgreSQL server binaries (apt-get install postgresql)" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  else
    echo "error: PostgreSQL's initdb/pg_ctl are needed: apt-get install postgresql" >&2
    exit 1
  fi
fi

echo "== ruff"; ruff check app ingest tests bench
echo "== mypy"; mypy app ingest
echo "== fast tests"; python -m pytest -m "not slow" "$@"
echo "== slow tests"; python -m pytest -m slow "$@"
