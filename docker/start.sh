#!/bin/sh
# The container's start command (also run by tests/test_process.py): migrate, then run.
# Arguments go to `bot.py run` (e.g. --webhook).
set -e
cd "$(dirname "$0")/.."
python bot.py db upgrade
exec python bot.py run "$@"
