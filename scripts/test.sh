#!/usr/bin/env bash
# The project's checks, as CI runs them: lint, types, every test (fast and slow).
#   scripts/test.sh            everything
#   scripts/test.sh -m "not slow"   the fast set only (under a minute)
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
export BOT_SHARED_DIR=${BOT_SHARED_DIR:-$(cd .. && pwd)/shared}
export BOT_TEST_PG_URL=${BOT_TEST_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}
ruff check .
ruff format --check .
mypy
bot scripts lint
python -m pytest -n 2 "$@"
