#!/usr/bin/env bash
# Makes the Python environment for the dask side of the comparison:
#   target/peers-venv  (relative to the repository root; works from any cwd)
# with dask, distributed and numpy at the versions pinned in requirements.txt.
# Idempotent: a second run with an unchanged requirements.txt does nothing.
#
#   benches/peers/setup.sh            # create / update the venv
#   PYTHON=python3.12 benches/peers/setup.sh   # use another interpreter
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/target/peers-venv"
req="$here/requirements.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
   && "$venv/bin/python" -c 'import dask, distributed, numpy' 2>/dev/null; then
    echo "peers venv up to date: $venv" >&2
    exit 0
fi

mkdir -p "$root/target"
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
"$venv/bin/python" -c 'import dask, distributed, numpy, sys; print(f"python {sys.version.split()[0]}, dask {dask.__version__}, distributed {distributed.__version__}, numpy {numpy.__version__}")' >&2
echo "$want" > "$stamp"
echo "peers venv ready: $venv" >&2
