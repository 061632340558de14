#!/usr/bin/env bash
# The first command: set everything up and start the product on its embedded defaults
# (SQLite, faiss-cpu, the in-process CPU embedder; data in ./kb-data; http://127.0.0.1:8000).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
kb migrate
exec kb serve "$@"
