#!/usr/bin/env bash
# layers.sh - the architecture of src/ as a check (make lint). Two rules, read from every
# #include "part/file.h" in src/ (system headers <...> are not looked at):
#  1. Layers: a part includes only itself and the parts below it.
#       util                       the base; knows no product
#       net      util              HTTP, SSE
#       model    util net          tokenizer, block hash, engine catalogue
#       probe    util net model    telemetry; knows no scenario
#       engine   util net model    the embedded engine, a sibling of the harness: never the harness
#       analysis, load, scenario, verdict, report, run: the harness, in that order; each may
#                include util net model probe and the harness parts before it (never engine):
#                analysis (signals, statistics) < load (the load generator) < scenario (each
#                scenario's phases, summary section and verdict) < verdict (summary.json, the
#                comparison's decision) < report (what a reader reads) < run (one run, a comparison)
#       cmd      everything        the commands
#       main.c   cmd util
#  2. No circle between files: a module is a .c with its .h (src/x/a.c + src/x/a.h); a module uses
#     another when its .c or .h includes the other's .h. Every strongly connected set of modules
#     (a.c includes b.h and b.c includes a.h, or a longer loop) is printed with its edges. A header
#     with no .c of its own (shared types or a function table: engine/internal.h,
#     net/http_transport.h, scenario/runstate.h) calls nothing, so what it includes for its types
#     is not a use: a loop through it is not two files calling each other.
# Prints every violation and exits 1 when there is any; 0 and one line when there is none.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find src -name '*.[ch]' | LC_ALL=C sort)
# "including-file included-path" for every quoted include
grep -H '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "${files[@]}" |
  sed -E 's/^([^:]+):[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1 \2/' |
  awk -v cmods="$(find src -name '*.c' | sed -E 's#^src/##; s#\.c$##' | tr '\n' ' ')" '
  BEGIN {
    split("util net model probe analysis load scenario verdict report run", H, " ")
    nh = 10
    for (i = 1; i <= nh; i++) rank[H[i]] = i
    nc = split(cmods, C, " ")
    for (i = 1; i <= nc; i++) hasc[C[i]] = 1
    allowed["engine", "util"] = allowed["engine", "net"] = allowed["engine", "model"] = 1
    allowed["engine", "engine"] = 1
    for (i = 1; i <= nh; i++) for (j = 1; j <= nh; j++) if (j <= i) allowed[H[i], H[j]] = 1
    allowed["main", "cmd"] = allowed["main", "util"] = 1
    bad = 0
  }
  function part(path,   p) {       # src/report/html.c -> report; src/main.c -> main
    p = path; sub(/^src\//, "", p)
    if (p !~ /\//) { sub(/\.[ch]$/, "", p); return p }
    sub(/\/.*/, "", p); return p
  }
  function module(path,   m) { m = path; sub(/^src\//, "", m); sub(/\.[ch]$/, "", m); return m }
  {
    from = $1; inc = $2
    if (inc !~ /\//) next                 # generated or local headers (version.h): no part
    fp = part(from); tp = inc; sub(/\/.*/, "", tp)
    if (fp != "cmd" && !((fp, tp) in allowed)) {
      printf "layers: %s includes %s (%s may not include %s)\n", from, inc, fp, tp
      bad = 1
    }
    a = module(from); b = inc; sub(/\.h$/, "", b)
    if (a != b && (a in hasc) && !((a, b) in edge)) { edge[a, b] = 1; out[a] = out[a] " " b; node[a]; node[b] }
  }
  # Tarjan: strongly connected components of the module graph
  function connect(v,   n, i, w, list, scc, members) {
    index_of[v] = low[v] = ++counter
    stack[++sp] = v; on[v] = 1
    n = split(out[v], list, " ")
    for (i = 1; i <= n; i++) {
      w = list[i]
      if (!(w in index_of)) { connect(w); if (low[w] < low[v]) low[v] = low[w] }
      else if (on[w] && index_of[w] < low[v]) low[v] = index_of[w]
    }
    if (low[v] == index_of[v]) {
      scc = 0; members = ""
      do { w = stack[sp--]; on[w] = 0; scc++; members = w " " members; comp[w] = v } while (w != v)
      if (scc > 1) report(members)
    }
  }
  function report(members,   n, m, i, j, k, list, e) {
    n = split(members, m, " ")
    e = ""
    for (i = 1; i <= n; i++) {
      k = split(out[m[i]], list, " ")
      for (j = 1; j <= k; j++) if (comp[list[j]] == comp[m[i]]) e = e sprintf("\n    %s -> %s.h", m[i], list[j])
    }
    printf "layers: include circle among %d modules:%s\n", n, e
    bad = 1
  }
  END {
    for (v in node) if (!(v in index_of)) connect(v)
    if (!bad) print "layers: every include goes down a layer; no include circle"
    exit bad
  }'
