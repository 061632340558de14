#!/usr/bin/env bash
# The second command: the whole test suite (lint, types, fast tests, then slow end-to-end
# tests). Installs what the tests need: the dev extras, PostgreSQL's server binaries and
# Chromium (driven by Playwright in tests/e2e).
set -euo pipefail
KB_EXTRAS=dev,ocr source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

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

# The browser tests (tests/e2e) drive Debian's Chromium through Playwright; never skipped.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Chromium for the browser tests (apt-get install chromium)" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
  else
    echo "error: the browser tests need /usr/bin/chromium: apt-get install chromium" >&2
    exit 1
  fi
fi

# Screenshots of Chinese pages need a CJK font (users' machines have their own).
if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh 2>/dev/null)" ] \
   && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing a CJK font for the browser screenshots (fonts-wqy-microhei)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >&2 \
    || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >&2; }
fi

echo "== ruff"; ruff check app ingest tests bench scripts
echo "== mypy"; mypy app ingest
echo "== fast tests"; python -m pytest -m "not slow" "$@"
echo "== slow tests"; python -m pytest -m slow "$@"
