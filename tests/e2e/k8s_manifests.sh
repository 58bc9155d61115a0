#!/usr/bin/env bash
# docs/k8s/: the manifests a cluster user submits and the image they run, checked without a
# cluster. tests/support/k8s_check.py reads the manifests as submitted (RUN_ID and START_AT
# substituted as the README says) and checks what the README relies on: the Indexed Job's N in
# completions, parallelism and --shard, no retried shard, the volumes and the claim, the merge's
# inputs = the shards' directories, and every kvbench flag against `kvbench run --help` /
# `kvbench merge --help`; and the Dockerfile against install-deps.sh and the binary's libraries.
# Where kubectl is installed, kubectl decodes the manifests into the API's types as well (a field
# it drops is one Kubernetes does not know). Then broken copies, each of which must be rejected.
source "$(dirname "$0")/lib.sh"

K8S=$SRC/docs/k8s
CHECK=$SRC/tests/support/k8s_check.py

PY=
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import yaml' 2>/dev/null; then PY=$p; break; fi
done
[[ -n $PY ]] || skip "python3 with python3-yaml is needed (scripts/install-deps.sh installs it)"

"$KVBENCH" run --help >"$TMP/run.help" || fail "kvbench run --help failed"
grep -q -- '--base-url' "$TMP/run.help" || fail "kvbench run --help lists no --base-url"
"$KVBENCH" merge --help >"$TMP/merge.help" || fail "kvbench merge --help failed"
CHECK_ARGS=(--run-help "$TMP/run.help" --merge-help "$TMP/merge.help")

RUN_ID=k8s-e2e-1
START_AT=$(($(date +%s) + 120))
MANIFESTS=(results-pvc.yaml shards-job.yaml merge-job.yaml results-reader.yaml)

# The README's submission: envsubst '$RUN_ID $START_AT' (gettext-base), or the same substitution
# where envsubst is missing.
mkdir -p "$TMP/ok"
for f in "${MANIFESTS[@]}"; do
  if command -v envsubst >/dev/null 2>&1; then
    # shellcheck disable=SC2016 # envsubst's list of names, not shell
    RUN_ID=$RUN_ID START_AT=$START_AT envsubst '$RUN_ID $START_AT' <"$K8S/$f" >"$TMP/ok/$f"
  else
    "$PY" "$CHECK" subst --set RUN_ID=$RUN_ID --set START_AT=$START_AT <"$K8S/$f" >"$TMP/ok/$f"
  fi
done
grep -q "value: \"$START_AT\"" "$TMP/ok/shards-job.yaml" || fail "START_AT was not substituted"

check() { "$PY" "$CHECK" manifests "${CHECK_ARGS[@]}" "$@"; }
ok_files() { printf "$TMP/ok/%s\n" "${MANIFESTS[@]}"; }

# 1. As submitted, with the image: accepted, and what it read is what the README says.
mapfile -t OK < <(ok_files)
expect_exit 0 check --dockerfile "$K8S/Dockerfile" --install-deps "$SRC/scripts/install-deps.sh" \
  --binary "$KVBENCH" "${OK[@]}"
echo "$OUT"
grep -q "Job/kvbench-shards: 3 shards, run id $RUN_ID, start at $START_AT, writing /results/$RUN_ID-shard0of3, /results/$RUN_ID-shard1of3, /results/$RUN_ID-shard2of3" <<<"$OUT" ||
  fail "the shards Job was not read as 3 shards of $RUN_ID"
grep -q "Job/kvbench-merge: merges 3 directories into /results/$RUN_ID" <<<"$OUT" ||
  fail "the merge Job was not read as merging the 3 shards"
grep -q 'PersistentVolumeClaim/kvbench-results: ReadWriteMany' <<<"$OUT" || fail "no RWX claim read"
grep -q 'kvbench run flags listed by --help: .*--base-url' <<<"$OUT" || fail "run flags not read"
grep -q 'kvbench merge flags listed by --help: .*--results-root' <<<"$OUT" || fail "merge flags not read"
is_elf() { [[ $(head -c 4 "$1" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]]; }
LIBS_CHECKED=0
if command -v readelf >/dev/null && command -v dpkg >/dev/null && is_elf "$KVBENCH"; then
  LIBS_CHECKED=1
  grep -q 'runtime stage installs the packages of .*libjansson.so.4' <<<"$OUT" ||
    fail "the runtime packages were not checked against the binary"
fi

# The README's form for clusters before 1.29 (backoffLimit: 0, FailJob) is accepted too.
mkdir -p "$TMP/old"
cp "$TMP"/ok/*.yaml "$TMP/old/"
sed -e 's/^  backoffLimitPerIndex: 0$/  backoffLimit: 0/' -e 's/- action: FailIndex$/- action: FailJob/' \
  "$TMP/ok/shards-job.yaml" >"$TMP/old/shards-job.yaml"
if ! grep -q '^  backoffLimit: 0$' "$TMP/old/shards-job.yaml" || grep -q FailIndex "$TMP/old/shards-job.yaml"; then
  fail "the pre-1.29 form was not made"
fi
mapfile -t OLD < <(printf "$TMP/old/%s\n" "${MANIFESTS[@]}")
expect_exit 0 check "${OLD[@]}"

# 2. Not substituted: rejected, naming the placeholder.
raw=()
for f in "${MANIFESTS[@]}"; do raw+=("$K8S/$f"); done
expect_exit 1 check "${raw[@]}"
# shellcheck disable=SC2016 # the placeholder's text
grep -q 'shards-job.yaml: ${START_AT} is not substituted' <<<"$ERR" || fail "raw file: $ERR"

# kubectl set env --local: the other substitution the README gives, and kubectl's decoding of the
# manifests into the API's types (no server).
decode() { # FILE OUT VAR=VALUE...
  local f=$1 out=$2
  shift 2
  timeout 30 kubectl set env --local -f "$f" "$@" -o yaml </dev/null >"$out"
}
check_decoded() {
  mkdir -p "$TMP/kc"
  decode "$K8S/shards-job.yaml" "$TMP/kc/shards-job.yaml" RUN_ID=$RUN_ID START_AT=$START_AT ||
    fail "kubectl could not decode shards-job.yaml"
  decode "$K8S/merge-job.yaml" "$TMP/kc/merge-job.yaml" RUN_ID=$RUN_ID ||
    fail "kubectl could not decode merge-job.yaml"
  decode "$K8S/results-reader.yaml" "$TMP/kc/results-reader.yaml" KVBENCH_CHECK=1 ||
    fail "kubectl could not decode results-reader.yaml"
  for f in shards-job.yaml merge-job.yaml results-reader.yaml; do
    expect_exit 0 "$PY" "$CHECK" roundtrip "$TMP/ok/$f" "$TMP/kc/$f"
    echo "$OUT"
  done
  expect_exit 0 check "$TMP/ok/results-pvc.yaml" "$TMP/kc/shards-job.yaml" \
    "$TMP/kc/merge-job.yaml" "$TMP/kc/results-reader.yaml"
  grep -q "3 shards, run id $RUN_ID, start at $START_AT" <<<"$OUT" ||
    fail "kubectl set env's substitution was not read back: $OUT"
  # A field Kubernetes does not know (kubectl drops it), and one of the wrong type (refused).
  sed 's/^  completionMode: Indexed/  completionMod: Indexed/' "$TMP/ok/shards-job.yaml" >"$TMP/typo.yaml"
  ! cmp -s "$TMP/ok/shards-job.yaml" "$TMP/typo.yaml" || fail "the typo was not made"
  decode "$TMP/typo.yaml" "$TMP/typo.out" X=1 || fail "kubectl could not decode the typo copy"
  expect_exit 1 "$PY" "$CHECK" roundtrip "$TMP/typo.yaml" "$TMP/typo.out"
  grep -q 'spec.completionMod: dropped by kubectl' <<<"$ERR" || fail "typo: $ERR"
  echo "rejected by kubectl's decoding: spec.completionMod"
  sed 's/^  completions: 3/  completions: "three"/' "$TMP/ok/shards-job.yaml" >"$TMP/type.yaml"
  ! decode "$TMP/type.yaml" "$TMP/type.out" X=1 2>"$TMP/type.err" ||
    fail "kubectl decoded completions: \"three\""
  echo "rejected by kubectl's decoding: $(cut -c1-120 "$TMP/type.err")"
}

# 3. kubectl, where it is installed. `kubectl apply --dry-run=client` asks the API server for its
# resource types first, so it runs against a kubeconfig whose server is a closed loopback port
# (never a real cluster): where it works offline it must accept the files; where it cannot, the
# typed decoding of `kubectl set env --local` (no server) stands in, on the Jobs and the Pod. A
# kubectl older than 1.29 (Debian 12's kubernetes-client is 1.20) does not know
# backoffLimitPerIndex and would drop it: its decoding is not used.
kubectl_minor() {
  kubectl version --client -o json 2>/dev/null </dev/null |
    jq -r 'if .clientVersion.major == "1" then .clientVersion.minor else "0" end' | tr -dc 0-9
}
if command -v kubectl >/dev/null 2>&1; then
  cat >"$TMP/kubeconfig" <<'EOF'
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
EOF
  export KUBECONFIG=$TMP/kubeconfig
  minor=$(kubectl_minor)
  if timeout 30 kubectl apply --dry-run=client --validate=false -f "$TMP/ok/results-pvc.yaml" \
    </dev/null >"$TMP/kubectl.out" 2>&1; then
    for f in "${OK[@]}"; do
      timeout 30 kubectl apply --dry-run=client --validate=false -f "$f" </dev/null ||
        fail "kubectl apply --dry-run=client rejected $f"
    done
  else
    echo "note: kubectl apply --dry-run=client needs an API server: $(tail -1 "$TMP/kubectl.out" | cut -c1-160)"
  fi
  if [[ ${minor:-0} -ge 29 ]]; then
    check_decoded
  else
    echo "note: kubectl 1.${minor:-?} predates backoffLimitPerIndex (1.29): its decoding is not used"
  fi
  unset KUBECONFIG
else
  echo "note: no kubectl: the schema check alone"
fi

# 4. Broken copies: each must be rejected with its reason. reject NAME FILE SED MESSAGE
reject() {
  local name=$1 file=$2 expr=$3 want=$4 dir=$TMP/bad-$1
  mkdir -p "$dir"
  cp "$TMP"/ok/*.yaml "$dir/"
  sed -e "$expr" "$TMP/ok/$file" >"$dir/$file"
  ! cmp -s "$TMP/ok/$file" "$dir/$file" || fail "$name: '$expr' changed nothing in $file"
  local files=()
  for f in "${MANIFESTS[@]}"; do files+=("$dir/$f"); done
  expect_exit 1 check "${files[@]}"
  grep -qF -- "$want" <<<"$ERR" || fail "$name: wanted '$want', got: $ERR"
  echo "rejected $name: $(grep -F -- "$want" <<<"$ERR" | head -1)"
}
reject completions shards-job.yaml 's/^  completions: 3/  completions: 4/' \
  'completions 4 != N 3 of --shard'
reject parallelism shards-job.yaml 's/^  parallelism: 3/  parallelism: 2/' \
  'parallelism 2 != N 3 of --shard'
reject shard-n shards-job.yaml 's#(JOB_COMPLETION_INDEX)/3#(JOB_COMPLETION_INDEX)/4#' \
  'completions 3 != N 4 of --shard'
# shellcheck disable=SC2016 # the manifests' $(VAR), expanded by the kubelet, not here
reject shard-literal shards-job.yaml 's#\$(JOB_COMPLETION_INDEX)/3#0/3#' \
  "--shard '0/3': want \$(JOB_COMPLETION_INDEX)/N"
reject not-indexed shards-job.yaml 's/^  completionMode: Indexed/  completionMode: NonIndexed/' \
  'completionMode must be Indexed'
reject unknown-flag shards-job.yaml 's/--eviction-a-requests,/--eviction-a-request,/' \
  'kvbench run: unknown flag --eviction-a-request'
reject merge-flag merge-job.yaml 's/--max-skew-s,/--max-skew,/' \
  'kvbench merge: unknown flag --max-skew'
reject missing-volume shards-job.yaml 's/^        - name: results$/        - name: result-data/' \
  'volumeMount results: no volume of that name'
reject claim merge-job.yaml 's/claimName: kvbench-results/claimName: kvbench-result/' \
  "claim 'kvbench-result': no PersistentVolumeClaim"
reject merge-inputs merge-job.yaml '/shard2of3/d' "missing ['/results/$RUN_ID-shard2of3']"
reject merge-n merge-job.yaml 's/of3"/of4"/' "not a shard ['/results/$RUN_ID-shard0of4'"
reject retried shards-job.yaml 's/backoffLimitPerIndex: 0/backoffLimitPerIndex: 2/' \
  'backoffLimitPerIndex 2: a failed shard would be retried'
reject no-backoff shards-job.yaml '/backoffLimitPerIndex: 0/d' 'backoffLimit 6 (the default)'
reject ignore shards-job.yaml '0,/- action: FailIndex/s//- action: Ignore/' \
  'podFailurePolicy action Ignore'
reject restart shards-job.yaml 's/restartPolicy: Never/restartPolicy: OnFailure/' \
  'restartPolicy must be Never'
reject rwo results-pvc.yaml 's/- ReadWriteMany/- ReadWriteOnce/' \
  'accessModes must include ReadWriteMany'
reject no-name results-pvc.yaml '/^  name: kvbench-results/d' 'no metadata.name'
reject start-at shards-job.yaml "s/value: \"$START_AT\"/value: \"soon\"/" \
  "--start-at 'soon' is not epoch seconds"
reject shell shards-job.yaml 's/command: \[kvbench\]/command: [sh, -c, "kvbench run"]/' \
  'runs kvbench through a shell'
# shellcheck disable=SC2016 # the manifests' $(VAR), expanded by the kubelet, not here
reject sync-off-volume shards-job.yaml 's#"/results/$(RUN_ID).sync"#/tmp/sync#' \
  '--shard-sync /tmp/sync is not on the results volume'

# The image: a runtime stage without a library kvbench links, a build stage without a -dev
# package install-deps.sh installs.
if [[ $LIBS_CHECKED == 1 ]]; then
  sed 's/ libjansson4 / /' "$K8S/Dockerfile" >"$TMP/Dockerfile.nojansson"
  ! cmp -s "$K8S/Dockerfile" "$TMP/Dockerfile.nojansson" || fail "libjansson4 was not removed"
  expect_exit 1 check --dockerfile "$TMP/Dockerfile.nojansson" \
    --install-deps "$SRC/scripts/install-deps.sh" --binary "$KVBENCH" "${OK[@]}"
  grep -q 'libjansson.so.4 (libjansson4) is not installed in the runtime stage' <<<"$ERR" ||
    fail "Dockerfile without libjansson4: $ERR"
fi
sed 's/ libxxhash-dev / /' "$K8S/Dockerfile" >"$TMP/Dockerfile.noxxhash"
! cmp -s "$K8S/Dockerfile" "$TMP/Dockerfile.noxxhash" || fail "libxxhash-dev was not removed"
expect_exit 1 check --dockerfile "$TMP/Dockerfile.noxxhash" \
  --install-deps "$SRC/scripts/install-deps.sh" "${OK[@]}"
grep -q 'build stage does not install libxxhash-dev' <<<"$ERR" || fail "no libxxhash-dev: $ERR"
echo "k8s manifests: ok"
