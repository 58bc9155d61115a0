#!/usr/bin/env bash
# funclen.sh [LIMIT] - list every function in src/ longer than LIMIT lines (default 100), counted
# from its signature line to its closing brace (tools/funclen.awk, clang-formatted code), except
# those in tools/funclen-allow.txt (tables of data). Prints "lines file:line function" for each
# offender, longest first; exits 1 when there is any, 0 when there is none.
set -euo pipefail
cd "$(dirname "$0")/.."
LIM=${1:-100}
ALLOW=tools/funclen-allow.txt
mapfile -t files < <(find src -name '*.c' | LC_ALL=C sort)
offenders=$(awk -v LIM="$LIM" -f tools/funclen.awk "${files[@]}" |
  awk -v allow="$ALLOW" '
    BEGIN { while ((getline line < allow) > 0) { if (line ~ /^[ \t]*(#|$)/) continue;
              split(line, f, /[ \t]+/); ok[f[1] " " f[2]] = 1 } }
    { split($2, loc, ":"); if (!((loc[1] " " $3) in ok)) print "  " $0 }' |
  sort -rn)
if [[ -n $offenders ]]; then
  echo "funclen: functions over $LIM lines (split them, or list a table of data in $ALLOW):"
  echo "$offenders"
  exit 1
fi
echo "funclen: no function over $LIM lines"
