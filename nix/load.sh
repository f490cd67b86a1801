#!/usr/bin/env bash
set -euo pipefail
echo provisional >&2
exit 1
