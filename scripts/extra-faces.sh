#!/usr/bin/env bash
# Rebuilds the extra real-face videos of configs/extra_real_videos.tsv (issue 27 point 5) from local clones.
#
#   scripts/extra-faces.sh CLONES OUT [LIST]
#
# CLONES holds one git clone per repository as CLONES/<owner>/<name> (`git clone https://github.com/<owner>/<name>`
# on a machine with network). Each file is read at the commit the list names, so a later change to a repository
# cannot change the training data. MPEG-1 program streams (GRID's .mpg) are re-coded near-losslessly to H.264 MP4,
# the containers Deepshield's media reader opens; MP4s are copied byte for byte. OUT then has the corpus layout
# (OUT/real_videos/) that `deepshield temporal-cache --corpus OUT` reads. The media stay outside the repository.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 CLONES OUT [LIST (default configs/extra_real_videos.tsv)]" >&2
    exit 2
fi
clones="$1"
out="$2/real_videos"
list="${3:-$root/configs/extra_real_videos.tsv}"
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
made=0
while IFS=$'\t' read -r file repo commit path _; do
    case "$file" in "" | "#"* | file) continue ;; esac
    clone="$clones/$repo"
    if ! git -C "$clone" rev-parse --git-dir >/dev/null 2>&1; then
        echo "error: no git clone of $repo at $clone" >&2
        exit 1
    fi
    if ! git -C "$clone" cat-file -e "$commit:$path" 2>/dev/null; then
        echo "error: $repo has no $path at $commit (fetch its full history)" >&2
        exit 1
    fi
    src="$tmp/$(basename "$path")"
    git -C "$clone" show "$commit:$path" >"$src"
    case "$path" in
        *.mp4) cp "$src" "$out/$file" ;;
        *) ffmpeg -nostdin -v error -y -i "$src" -an -c:v libx264 -crf 12 -preset veryfast -pix_fmt yuv420p "$out/$file" ;;
    esac
    made=$((made + 1))
done <"$list"
echo "$made videos in $out"
