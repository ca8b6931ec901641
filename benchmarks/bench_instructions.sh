#!/usr/bin/env bash
# Deterministic cost of the simulator: CPU instructions (valgrind callgrind) of a run, less
# those of start-up, for this checkout and another one (e.g. a worktree of an older commit).
# Wall-time figures on this shared VM vary +-20% from minute to minute; instruction counts
# do not (PYTHONHASHSEED=0; one BLAS thread: an idle OpenBLAS thread spins and counts). Needs Debian's valgrind (apt-get install valgrind).
#
#   bash benchmarks/bench_instructions.sh OTHER_CHECKOUT [POOL_DAYS] [XIAOHE_DAYS]
#
# Prints, for the M/M/6 pool preset and for xiaohe, the instructions of each checkout's run
# and their ratio (this / other). Each run takes about a minute under valgrind.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
other="$(cd "${1:?give another checkout to compare with}" && pwd)"
pool_days="${2:-6}"
xiaohe_days="${3:-10}"
py="$here/.venv/bin/python"
prog="$(mktemp -d)"
trap 'rm -rf "$prog"' EXIT
cat > "$prog/run.py" <<'PY'
import sys
import numpy as np
from scenarios.engine import run_once
what, days = sys.argv[1], float(sys.argv[2])
if what == "pool":
    from scenarios.presets import PoissonDemand, _preset_params, pool_district
    lam = 30 / 3600
    d = pool_district(6, handling_min=10.0)
    if days > 0:
        run_once(d, lambda ss: PoissonDemand(d, lambda t: lam, lam, np.ones(1), ss), days=days, seed=1,
                 params=_preset_params())
else:
    from scenarios.demand import DemandModel
    from scenarios.loader import load_cached
    d = load_cached("xiaohe")
    d.roads.precompute_travel()
    if days > 0:
        run_once(d, lambda ss: DemandModel(d, ss), days=days, seed=1)
PY
instructions() {  # checkout what days
  (cd "$1" && OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 PYTHONHASHSEED=0 PYTHONPATH="$1" valgrind --tool=callgrind --callgrind-out-file="$prog/cg.out" \
    "$py" "$prog/run.py" "$2" "$3" >/dev/null 2>"$prog/vg.err")
  awk '/^(summary|totals):/ {print $2; exit}' "$prog/cg.out"
}
for what in pool xiaohe; do
  days=$pool_days; [ "$what" = xiaohe ] && days=$xiaohe_days
  a=$(( $(instructions "$here" $what "$days") - $(instructions "$here" $what 0) ))
  b=$(( $(instructions "$other" $what "$days") - $(instructions "$other" $what 0) ))
  python3 -c "print(f'$what ($days days): this {$a/1e9:.3f} G instructions, other {$b/1e9:.3f} G, ratio {$a/$b:.3f}')"
done
