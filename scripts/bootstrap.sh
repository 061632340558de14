# Sourced by up.sh and test.sh: make .venv with the project installed (once per change
# of pyproject.toml). Needs only Python 3.11+ and access to the package registry.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
EXTRAS="${KB_EXTRAS:-}"  # set by test.sh; sourced scripts share their caller's "$@"

PY=""
for cand in python3.13 python3.12 python3.11 python3; do
  if command -v "$cand" >/dev/null 2>&1 &&
     "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    PY="$cand"; break
  fi
done
[ -n "$PY" ] || { echo "error: Python 3.11 or newer is required" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $($PY --version)" >&2
  "$PY" -m venv .venv
fi
STAMP=".venv/.kb-installed${EXTRAS:+-$EXTRAS}"
WANT="$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
  echo "installing the project into .venv${EXTRAS:+ (with $EXTRAS)}" >&2
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -e ".${EXTRAS:+[$EXTRAS]}" >&2
  echo "$WANT" > "$STAMP"
fi
# The web UI's vendored assets (htmx, pinned and integrity-checked); silent when present.
.venv/bin/python scripts/fetch_assets.py
export PATH="$ROOT/.venv/bin:$PATH"
