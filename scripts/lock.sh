#!/usr/bin/env bash
# Rewrites scripts/constraints.txt: every package the test extras pull in, pinned.
# pip alone backtracks for over half an hour on s3fs/aiobotocore/botocore/moto/dask pins
# ("resolution-too-deep" on a fresh machine); uv resolves the same graph in seconds, and
# scripts/test.sh installs with these pins as constraints, so pip has one candidate each.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v uv >/dev/null || python3 -m pip install -q uv
uv pip compile pyproject.toml --extra dev --python-version 3.11 --no-header --no-annotate \
  -o scripts/constraints.txt
