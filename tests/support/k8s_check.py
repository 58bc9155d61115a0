#!/usr/bin/env python3
"""Checks docs/k8s/ (the Kubernetes manifests and the image) without a cluster.

What the README relies on, checked on the manifests as a cluster user would submit them:
  - every document has apiVersion, kind and a DNS-1123 metadata.name;
  - the shards Job is a batch/v1 Indexed Job with completions == parallelism == N, where N is
    the "/N" of `--shard $(JOB_COMPLETION_INDEX)/N`; restartPolicy Never; no index retried
    (backoffLimitPerIndex 0, or backoffLimit 0 on clusters before 1.29); no podFailurePolicy rule
    that ignores a failure (the pod would be made again, later, in another time window) and a
    rule that fails the index of a disrupted (evicted, preempted) pod;
  - every flag given to `kvbench run` / `kvbench merge` is one that command's --help lists;
  - the volumes that volumeMounts name exist, and every claimName is a PersistentVolumeClaim
    of the inputs, ReadWriteMany; results root and barrier directory are on that volume;
  - the merge Job's inputs are exactly the directories the shards write,
    <results-root>/<run-id>-shard<I>of<N> for I = 0..N-1, on the same claim, same image.
With --dockerfile: the image is Debian 12 in both stages, the build stage installs the build
packages of scripts/install-deps.sh, the runtime stage installs the package of every library the
kvbench binary needs (readelf + dpkg), and it runs as the manifests' runAsUser.

`roundtrip IN DECODED` compares a manifest with kubectl's typed decoding of it (`kubectl set
env --local -o json`): a field kubectl dropped is one Kubernetes does not know.

Exit 0: all good (a summary on stdout); 1: the problems, one line each, on stderr; 2: usage.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

try:
    import yaml
except ImportError:  # the e2e test skips before calling us without it
    sys.stderr.write("k8s_check: python3-yaml is not installed\n")
    sys.exit(2)

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
SHARD_ARG = re.compile(r"^\$\(JOB_COMPLETION_INDEX\)/([0-9]+)$")


class Problems:
    def __init__(self):
        self.lines = []

    def add(self, where, msg):
        self.lines.append(f"{where}: {msg}")


# ---------------------------------------------------------------- kvbench --help


def parse_help(text):
    """{"--flag": takes_value} from opts_help's layout: "  --name METAVAR" in a 38-column left
    field (the help text starts at column 38), or alone on its line when it is wider."""
    flags = {}
    for line in text.splitlines():
        m = re.match(r"^  (--[a-z0-9][a-z0-9-]*)(?: (\S+))?(?= |$)", line)
        if not m:
            continue
        takes = False
        if m.group(2):
            # A metavar ends inside the left field, or the line is the left field alone; else
            # the word is the help text after a 37-character bool flag.
            takes = m.end(2) <= 37 or line.rstrip() == line[: m.end(2)]
        flags[m.group(1)] = takes
    return flags


def load_flags(run_help, merge_help):
    known = {"run": {}, "merge": {}}
    for sub, path in (("run", run_help), ("merge", merge_help)):
        with open(path, encoding="utf-8") as f:
            for flag, takes in parse_help(f.read()).items():
                known[sub][flag] = (takes, "help")
    return known


# ---------------------------------------------------------------- documents


def substitute(text, sets):
    """envsubst '$A $B': ${A} and ${B} replaced, every other text left alone."""
    return PLACEHOLDER.sub(lambda m: sets.get(m.group(1), m.group(0)), text)


def load_docs(paths, sets, problems):
    docs = []
    for path in paths:
        name = os.path.basename(path)
        with open(path, encoding="utf-8") as f:
            text = substitute(f.read(), sets)
        for m in PLACEHOLDER.finditer(text):
            problems.add(name, f"${{{m.group(1)}}} is not substituted (envsubst or kubectl set "
                               "env as docs/k8s/README.md says)")
        try:
            loaded = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as e:
            problems.add(name, f"not YAML: {str(e).splitlines()[0]}")
            continue
        for i, doc in enumerate(loaded):
            if isinstance(doc, dict) and doc.get("kind") == "List":
                loaded[i : i + 1] = doc.get("items") or []
        for doc in loaded:
            docs.append((name, doc))
    return docs


def ident(name, doc):
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    return f"{name}: {doc.get('kind', '?')}/{meta.get('name', '?')}"


def check_header(name, doc, problems):
    if not isinstance(doc, dict):
        problems.add(name, "a document that is not a mapping")
        return False
    where = ident(name, doc)
    ok = True
    for key in ("apiVersion", "kind"):
        if not isinstance(doc.get(key), str) or not doc.get(key):
            problems.add(where, f"no {key}")
            ok = False
    meta = doc.get("metadata")
    mname = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(mname, str) or not mname:
        problems.add(where, "no metadata.name")
        ok = False
    elif not DNS_SUBDOMAIN.match(mname):
        problems.add(where, f"metadata.name {mname!r} is not a DNS-1123 name")
    return ok


def pod_spec(doc):
    if doc.get("kind") == "Pod":
        return doc.get("spec") or {}
    if doc.get("kind") == "Job":
        return ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
    return None


def expand(value, env):
    """The kubelet's $(VAR) expansion of command and args: $$ is $, an unknown $(VAR) stays."""
    def one(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return VAR_REF.sub(one, str(value))


def container_env(c):
    env = {}
    for e in c.get("env") or []:
        if isinstance(e, dict) and "value" in e and isinstance(e.get("name"), str):
            env[e["name"]] = str(e["value"])
    return env


class Invocation:
    """One container's `kvbench SUB ...`: its flags (name -> values) and positionals."""

    def __init__(self, where, container, sub, flags, positional, mounts):
        self.where = where
        self.container = container
        self.sub = sub
        self.flags = flags
        self.positional = positional
        self.mounts = mounts  # mountPath -> claimName (PVC volumes only)

    def one(self, flag):
        vals = self.flags.get(flag)
        return vals[-1] if vals else None

    def claim_of(self, path):
        """The claim whose mount holds PATH (None when it is not on a PVC)."""
        best = None
        for mpath, claim in self.mounts.items():
            root = mpath.rstrip("/")
            if path == root or path.startswith(root + "/"):
                if best is None or len(root) > len(best[0]):
                    best = (root, claim)
        return best[1] if best else None


def parse_kvbench(where, argv, known, used, problems):
    """(sub, flags, positional) of an exec-form kvbench argv, or None when it is not one."""
    if len(argv) < 2 or argv[1] not in known:
        got = argv[1] if len(argv) > 1 else "nothing"
        problems.add(where, f"kvbench {got}: only run and merge are checked (their --help is "
                            "given)")
        return None
    sub = argv[1]
    flags, positional = {}, []
    rest = argv[2:]
    i = 0
    while i < len(rest):
        tok = rest[i]
        i += 1
        if tok == "--":
            positional.extend(rest[i:])
            break
        if not tok.startswith("--"):
            positional.append(tok)
            continue
        name, eq, val = tok.partition("=")
        spec = known[sub].get(name)
        if spec is None and name.startswith("--no-"):
            base = known[sub].get("--" + name[5:])
            if base is not None and not base[0] and not eq:
                spec, name = base, "--" + name[5:]
        if spec is None:
            problems.add(where, f"kvbench {sub}: unknown flag {name} (not in `kvbench {sub} "
                                "--help`)")
            continue
        used.setdefault(sub, {})[name] = spec[1]
        takes = spec[0]
        if takes and not eq:
            if i >= len(rest):
                problems.add(where, f"kvbench {sub}: {name} wants a value")
                break
            val = rest[i]
            i += 1
        elif not takes and eq:
            problems.add(where, f"kvbench {sub}: {name} takes no value")
        flags.setdefault(name, []).append(val if takes else True)
    return sub, flags, positional


def check_pod(name, doc, known, used, problems):
    """Volumes, claims, resources; the kvbench invocations of its containers."""
    where = ident(name, doc)
    spec = pod_spec(doc)
    if spec is None:
        return [], []
    volumes = {}
    for v in spec.get("volumes") or []:
        if isinstance(v, dict) and isinstance(v.get("name"), str):
            volumes[v["name"]] = v
    claims = []
    for v in volumes.values():
        pvc = v.get("persistentVolumeClaim")
        if isinstance(pvc, dict):
            claims.append((where, pvc.get("claimName")))
    runs = []
    conts = list(spec.get("containers") or [])
    if not conts:
        problems.add(where, "no containers")
    for c in conts + list(spec.get("initContainers") or []):
        cwhere = f"{where}: container {c.get('name', '?')}"
        if not c.get("name") or not c.get("image"):
            problems.add(cwhere, "a container needs a name and an image")
        res = (c.get("resources") or {}).get("requests") or {}
        if "cpu" not in res or "memory" not in res:
            problems.add(cwhere, "no resources.requests cpu and memory (docs/k8s/README.md says "
                                 "what to size them on)")
        mounts = {}
        for m in c.get("volumeMounts") or []:
            vname = m.get("name")
            if vname not in volumes:
                problems.add(cwhere, f"volumeMount {vname}: no volume of that name in the pod")
                continue
            pvc = volumes[vname].get("persistentVolumeClaim")
            if isinstance(pvc, dict) and m.get("mountPath"):
                mounts[m["mountPath"]] = pvc.get("claimName")
        env = container_env(c)
        argv = [expand(a, env) for a in list(c.get("command") or []) + list(c.get("args") or [])]
        if argv and os.path.basename(argv[0]) == "kvbench":
            parsed = parse_kvbench(cwhere, argv, known, used, problems)
            if parsed:
                runs.append(Invocation(cwhere, c, parsed[0], parsed[1], parsed[2], mounts))
        elif any(re.search(r"(^|[\s/;&|])kvbench(\s|$)", a) for a in argv):
            problems.add(cwhere, "runs kvbench through a shell: write it in exec form "
                                 "(command: [kvbench], args: [...]) so that its flags are checked "
                                 "and the kubelet expands $(VAR)")
        elif not c.get("command") and "kvbench" in str(c.get("image", "")):
            problems.add(cwhere, "no command: write command: [kvbench] (or what it runs) so "
                                 "that the check sees it")
    return runs, claims


# ---------------------------------------------------------------- the Jobs


def check_job_common(where, doc, problems):
    if doc.get("apiVersion") != "batch/v1":
        problems.add(where, f"apiVersion {doc.get('apiVersion')!r}, want batch/v1")
    if pod_spec(doc).get("restartPolicy") != "Never":
        problems.add(where, "restartPolicy must be Never (a container restarted in place would "
                            "run its phases again, late)")


def check_failure_policy(where, spec, containers, problems):
    per_index = spec.get("backoffLimitPerIndex")
    if per_index is not None:
        if per_index != 0:
            problems.add(where, f"backoffLimitPerIndex {per_index}: a failed shard would be "
                                "retried in another time window; want 0")
    elif spec.get("backoffLimit") != 0:
        problems.add(where, f"backoffLimit {spec.get('backoffLimit', '6 (the default)')}: a "
                            "failed shard would be retried in another time window; want "
                            "backoffLimitPerIndex: 0 (or backoffLimit: 0 before Kubernetes 1.29)")
    rules = ((spec.get("podFailurePolicy") or {}).get("rules")) or []
    disruption = False
    for r in rules:
        action = r.get("action")
        if action == "Ignore":
            problems.add(where, "podFailurePolicy action Ignore: the pod would be made again, "
                                "after the other shards started, in another time window")
        if action == "FailIndex" and per_index is None:
            problems.add(where, "podFailurePolicy FailIndex needs backoffLimitPerIndex")
        codes = r.get("onExitCodes")
        if isinstance(codes, dict) and codes.get("containerName") not in (None, *containers):
            problems.add(where, f"podFailurePolicy onExitCodes names container "
                                f"{codes.get('containerName')!r}, which the pod does not have")
        for cond in r.get("onPodConditions") or []:
            if cond.get("type") == "DisruptionTarget" and action in ("FailIndex", "FailJob"):
                disruption = True
    if not disruption:
        problems.add(where, "no podFailurePolicy rule that fails an evicted or preempted pod "
                            "(onPodConditions DisruptionTarget: FailIndex)")


def as_int(v):
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def check_shards(where, doc, inv, problems):
    """The Indexed Job of `kvbench run --shard`; returns its facts for the merge."""
    spec = doc.get("spec") or {}
    check_job_common(where, doc, problems)
    if spec.get("completionMode") != "Indexed":
        problems.add(where, "completionMode must be Indexed (JOB_COMPLETION_INDEX is --shard's I)")
    shard = inv.one("--shard")
    m = SHARD_ARG.match(shard or "")
    n = int(m.group(1)) if m else None
    if not m:
        problems.add(inv.where, f"--shard {shard!r}: want $(JOB_COMPLETION_INDEX)/N")
    elif n < 1:
        problems.add(inv.where, "--shard I/0: N must be at least 1")
    for key in ("completions", "parallelism"):
        v = as_int(spec.get(key))
        if v is None:
            problems.add(where, f"{key} must be an integer (N)")
        elif n is not None and v != n:
            problems.add(where, f"{key} {v} != N {n} of --shard: every shard must run, at once")
    containers = [c.get("name") for c in pod_spec(doc).get("containers") or []]
    check_failure_policy(where, spec, containers, problems)
    start = inv.one("--start-at")
    if start is None:
        problems.add(inv.where, "no --start-at: the shards' phases would not line up")
    elif not re.fullmatch(r"[0-9]+(\.[0-9]+)?", start):
        problems.add(inv.where, f"--start-at {start!r} is not epoch seconds")
    run_id = inv.one("--run-id")
    if not run_id or "$(" in run_id or "/" in run_id:
        problems.add(inv.where, f"--run-id {run_id!r}: want one literal id for every shard")
    root = inv.one("--results-root")
    claim = inv.claim_of(root) if root else None
    if not root or claim is None:
        problems.add(inv.where, f"--results-root {root!r} is not on a PersistentVolumeClaim "
                                "mount: the merge could not read the shards")
    sync = inv.one("--shard-sync") or (f"{root}/{run_id}.sync" if root else None)
    if sync and inv.claim_of(sync) != claim:
        problems.add(inv.where, f"--shard-sync {sync} is not on the results volume: the shards "
                                "on other nodes would not see each other")
    dirs = [f"{root.rstrip('/')}/{run_id}-shard{i}of{n}" for i in range(n)] if (
        root and run_id and n) else []
    return {"n": n, "run_id": run_id, "root": root, "claim": claim, "dirs": dirs,
            "start": start, "image": inv.container.get("image")}


def check_merge(where, doc, inv, shards, problems):
    check_job_common(where, doc, problems)
    if (doc.get("spec") or {}).get("backoffLimit") != 0:
        problems.add(where, "backoffLimit must be 0: a merge gives the same answer again, and "
                            "a second one finds the first's directory")
    if shards is None:
        problems.add(where, "a merge Job without a shards Job among the inputs to check it against")
        return None
    want = shards["dirs"]
    got = inv.positional
    if sorted(got) != sorted(want) or len(set(got)) != len(got):
        missing = [d for d in want if d not in got]
        extra = [d for d in got if d not in want]
        problems.add(inv.where, "merge inputs are not the directories the shards write "
                                f"({', '.join(want)}): missing {missing or 'none'}, "
                                f"not a shard {extra or 'none'}")
    for d in got:
        if inv.claim_of(d) != shards["claim"]:
            problems.add(inv.where, f"{d} is not on the shards' volume (claim {shards['claim']})")
    root = inv.one("--results-root")
    if root and inv.claim_of(root) is None:
        problems.add(inv.where, f"--results-root {root} is not on a PersistentVolumeClaim mount")
    run_id = inv.one("--run-id") or shards["run_id"]
    if run_id != shards["run_id"]:
        problems.add(inv.where, f"--run-id {run_id!r} is not the shards' {shards['run_id']!r}")
    if inv.container.get("image") != shards["image"]:
        problems.add(inv.where, f"image {inv.container.get('image')} is not the shards' "
                                f"{shards['image']}: merge with the kvbench that ran them")
    return f"{(root or 'bench/results').rstrip('/')}/{run_id}"


# ---------------------------------------------------------------- the image


def apt_packages(lines):
    pkgs = []
    for line in lines:
        for m in re.finditer(r"apt-get install ((?:[^&;])*)", line):
            pkgs += [t for t in m.group(1).split() if not t.startswith("-")]
    return pkgs


def dockerfile_stages(path):
    """[(FROM image, [logical lines])] with continuation lines joined."""
    stages, cur = [], ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not cur and line.lstrip().startswith("#"):
                continue
            if line.endswith("\\"):
                cur += line[:-1] + " "
                continue
            cur += line
            m = re.match(r"^\s*FROM\s+(\S+)", cur, re.I)
            if m:
                stages.append((m.group(1), []))
            elif stages and cur.strip():
                stages[-1][1].append(cur)
            cur = ""
    return stages


def needed_packages(binary, problems):
    """Debian packages of the shared libraries BINARY needs (DT_NEEDED), or None."""
    if not shutil.which("readelf") or not shutil.which("dpkg"):
        return None
    with open(binary, "rb") as f:
        if f.read(4) != b"\x7fELF":  # make check-aarch64's emulator wrapper, a script
            return None
    out = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True)
    sonames = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out.stdout)
    if out.returncode != 0 or not sonames:
        problems.add(binary, f"readelf -d found no NEEDED libraries: {out.stderr.strip()}")
        return {}
    skip = re.compile(r"^(libc|libm|libdl|libpthread|librt|ld-linux.*|libasan|libubsan|"
                      r"libtsan|libgcc_s|libstdc\+\+)\.so")
    sonames = [so for so in sonames if not skip.match(so)]
    # One dpkg call for all of them (each call reads the whole database): "pkg[:arch]: /path".
    q = subprocess.run(["dpkg", "-S"] + [f"*/{so}" for so in sonames], capture_output=True,
                       text=True)
    pkgs = {}
    for ln in q.stdout.splitlines():
        owner, _, path = ln.partition(": ")
        so = os.path.basename(path.strip())
        if so in sonames:
            for o in owner.split(","):
                pkgs.setdefault(so, set()).add(o.strip().split(":")[0])
    for so in sonames:
        if so not in pkgs:
            problems.add(binary, f"{so}: dpkg knows no package that holds it")
    return {so: sorted(o) for so, o in pkgs.items()}


def check_dockerfile(path, install_deps, binary, uids, problems, notes):
    name = os.path.basename(path)
    stages = dockerfile_stages(path)
    if len(stages) < 2:
        problems.add(name, "want a build stage and a runtime stage")
        return
    for image, _ in stages:
        if image not in ("debian:12-slim", "debian:bookworm-slim"):
            problems.add(name, f"FROM {image}: both stages must be Debian 12, so that the runtime "
                               "packages carry the sonames the build linked")
    build, runtime = apt_packages(stages[0][1]), apt_packages(stages[-1][1])
    with open(install_deps, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^PACKAGES=\((.*?)^\)", text, re.S | re.M)
    deps = re.sub(r"#.*", "", m.group(1)).split() if m else []
    # The build needs the compiler and the -dev packages; cmocka is for the tests only.
    want = [p for p in deps if p in ("gcc", "make", "cmake", "pkg-config")
            or (p.endswith("-dev") and p != "libcmocka-dev")]
    if not want:
        problems.add(os.path.basename(install_deps), "no PACKAGES list found")
    for p in want:
        if p not in build:
            problems.add(name, f"build stage does not install {p} (scripts/install-deps.sh does)")
    pkgs = needed_packages(binary, problems) if binary else None
    if pkgs is None:
        notes.append("readelf or dpkg missing, or the binary is not an ELF file: the runtime "
                     "packages are not checked against the binary")
    else:
        for so, owners in sorted(pkgs.items()):
            if not any(o in runtime for o in owners):
                problems.add(name, f"{so} ({' or '.join(owners)}) is not installed in the runtime "
                                   "stage, and kvbench needs it")
        notes.append(f"runtime stage installs the packages of {', '.join(sorted(pkgs))}")
    user = [ln for ln in stages[-1][1] if re.match(r"^\s*USER\s", ln)]
    uid = user[-1].split()[1].split(":")[0] if user else None
    if uid is None:
        problems.add(name, "runtime stage has no USER: the manifests run as non-root")
    for where, run_as in uids:
        if uid is not None and str(run_as) != uid:
            problems.add(where, f"runAsUser {run_as} is not the image's USER {uid}")
    entry = [ln for ln in stages[-1][1] if re.match(r"^\s*ENTRYPOINT\s", ln)]
    if not entry or "kvbench" not in entry[-1]:
        problems.add(name, "runtime stage's ENTRYPOINT is not kvbench")


# ---------------------------------------------------------------- main


def check_manifests(args):
    problems, notes = Problems(), []
    sets = dict(s.split("=", 1) for s in args.set)
    known = load_flags(args.run_help, args.merge_help)
    docs = load_docs(args.files, sets, problems)
    used = {}
    pvcs, claims, uids, shard_jobs, merge_jobs, seen = {}, [], [], [], [], set()
    for name, doc in docs:
        if not check_header(name, doc, problems):
            continue
        where = ident(name, doc)
        key = (doc["kind"], doc["metadata"]["name"])
        if key in seen:
            problems.add(where, "two documents of this kind and name")
        seen.add(key)
        if doc["kind"] == "PersistentVolumeClaim":
            spec = doc.get("spec") or {}
            if doc.get("apiVersion") != "v1":
                problems.add(where, "apiVersion must be v1")
            if "ReadWriteMany" not in (spec.get("accessModes") or []):
                problems.add(where, "accessModes must include ReadWriteMany: shards on several "
                                    "nodes write to it at once")
            size = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
            if not size:
                problems.add(where, "no resources.requests.storage")
            pvcs[doc["metadata"]["name"]] = size
            notes.append(f"{where}: ReadWriteMany, {size}")
            continue
        spec = pod_spec(doc)
        if spec is None:
            continue
        runs, pod_claims = check_pod(name, doc, known, used, problems)
        claims += pod_claims
        run_as = (spec.get("securityContext") or {}).get("runAsUser")
        if run_as is not None:
            uids.append((where, run_as))
        if doc["kind"] != "Job":
            continue
        for inv in runs:
            if inv.sub == "run" and "--shard" in inv.flags:
                shard_jobs.append((where, doc, inv))
            elif inv.sub == "merge":
                merge_jobs.append((where, doc, inv))
        if (doc.get("spec") or {}).get("completionMode") == "Indexed" and not any(
                i.sub == "run" and "--shard" in i.flags for i in runs):
            problems.add(where, "an Indexed Job whose kvbench run has no --shard: every index "
                                "would send the whole load")
    for where, claim in claims:
        if claim not in pvcs:
            problems.add(where, f"claim {claim!r}: no PersistentVolumeClaim of that name among "
                                f"the inputs ({', '.join(pvcs) or 'none'})")
    shards = None
    if len(shard_jobs) > 1:
        problems.add(shard_jobs[1][0], "a second shards Job: check one run at a time")
    for where, doc, inv in shard_jobs[:1]:
        shards = check_shards(where, doc, inv, problems)
        notes.append(f"{where}: {shards['n']} shards, run id {shards['run_id']}, start at "
                     f"{shards['start']}, writing {', '.join(shards['dirs'])}")
    for where, doc, inv in merge_jobs:
        out = check_merge(where, doc, inv, shards, problems)
        if out:
            notes.append(f"{where}: merges {len(inv.positional)} directories into {out}")
    if args.dockerfile:
        check_dockerfile(args.dockerfile, args.install_deps, args.binary, uids, problems, notes)
    for sub in ("run", "merge"):
        got = used.get(sub, {})
        if got:
            notes.append(f"kvbench {sub} flags listed by --help: {' '.join(sorted(got))}")
    if problems.lines:
        for line in problems.lines:
            sys.stderr.write(f"k8s_check: {line}\n")
        return 1
    for line in notes:
        print(f"k8s_check: {line}")
    return 0


def keys_lost(orig, decoded, path=""):
    """Paths of ORIG's mapping keys that DECODED does not have."""
    lost = []
    if isinstance(orig, dict):
        if not isinstance(decoded, dict):
            return [path or "."]
        for k, v in orig.items():
            sub = f"{path}.{k}" if path else str(k)
            if k not in decoded:
                lost.append(sub)
            else:
                lost += keys_lost(v, decoded[k], sub)
    elif isinstance(orig, list):
        if not isinstance(decoded, list) or len(decoded) < len(orig):
            return [path]
        for i, v in enumerate(orig):
            lost += keys_lost(v, decoded[i], f"{path}[{i}]")
    return lost


def check_roundtrip(args):
    with open(args.input, encoding="utf-8") as f:
        orig = [d for d in yaml.safe_load_all(f) if d is not None]
    with open(args.decoded, encoding="utf-8") as f:
        dec = [d for d in yaml.safe_load_all(f) if d is not None]
    if len(dec) == 1 and isinstance(dec[0], dict) and dec[0].get("kind") == "List":
        dec = dec[0].get("items") or []
    name = os.path.basename(args.input)
    if len(orig) != len(dec):
        sys.stderr.write(f"k8s_check: {name}: {len(orig)} documents, kubectl decoded {len(dec)}\n")
        return 1
    lost = []
    for o, d in zip(orig, dec):
        lost += [f"{ident(name, o)}: {p}" for p in keys_lost(o, d)]
    for p in lost:
        sys.stderr.write(f"k8s_check: {p}: dropped by kubectl's typed decoding (a field "
                         "Kubernetes does not know)\n")
    if not lost:
        print(f"k8s_check: {name}: every field survives kubectl's typed decoding")
    return 1 if lost else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("manifests")
    m.add_argument("--run-help", required=True, help="`kvbench run --help` output")
    m.add_argument("--merge-help", required=True, help="`kvbench merge --help` output")
    m.add_argument("--set", action="append", default=[], help="NAME=VALUE for ${NAME}")
    m.add_argument("--dockerfile")
    m.add_argument("--install-deps")
    m.add_argument("--binary")
    m.add_argument("files", nargs="+")
    r = sub.add_parser("roundtrip")
    r.add_argument("input")
    r.add_argument("decoded")
    s = sub.add_parser("subst", help="envsubst of the given names, stdin to stdout")
    s.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    if args.cmd == "manifests":
        if args.dockerfile and not args.install_deps:
            ap.error("--dockerfile needs --install-deps")
        try:
            return check_manifests(args)
        except (AttributeError, TypeError, KeyError, ValueError) as e:
            # A field of another shape than the API's (a list where a mapping goes...).
            sys.stderr.write(f"k8s_check: a manifest has a field of the wrong shape: "
                             f"{type(e).__name__}: {e}\n")
            return 1
    if args.cmd == "roundtrip":
        return check_roundtrip(args)
    sys.stdout.write(substitute(sys.stdin.read(), dict(x.split("=", 1) for x in args.set)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
