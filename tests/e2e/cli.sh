#!/usr/bin/env bash
# The kvbench command itself: --help, --version, help CMD (report.html named where the artifacts
# are), and usage errors (exit 2, one line).
source "$(dirname "$0")/lib.sh"

expect_exit 0 "$KVBENCH" --help
grep -q "^Usage: kvbench <command>" <<<"$OUT" || fail "--help has no usage line"
# where a run's report.html is, and how it is drawn again (in the text, whatever its line breaks)
flat=$(tr '\n' ' ' <<<"$OUT")
[[ $flat == *"report.md and report.html"* && $flat == *"'kvbench report RUN_DIR --html'"* ]] ||
  fail "--help does not mention report.html and report --html: $OUT"
expect_exit 0 "$KVBENCH" help run
flat=$(tr '\n' ' ' <<<"$OUT")
[[ $flat == *"report.md, report.html}"* && $flat == *"'kvbench report RUN_DIR --html'"* ]] ||
  fail "help run does not mention report.html and report --html: $OUT"

expect_exit 0 "$KVBENCH" --version
[[ $OUT =~ ^kvbench\ [0-9]+\.[0-9]+\.[0-9]+\ \(git\ [0-9a-f]{7,}(-dirty)?\)$|^kvbench\ [0-9.]+\ \(git\ unknown\)$ ]] ||
  fail "unexpected --version output: $OUT"

expect_exit 2 "$KVBENCH" --no-such-flag
one_line "$ERR"
grep -q -- "--no-such-flag" <<<"$ERR" || fail "error does not name the flag: $ERR"
[[ -z $OUT ]] || fail "usage error wrote to stdout"

expect_exit 2 "$KVBENCH" no-such-command
one_line "$ERR"
grep -q "unknown command 'no-such-command'" <<<"$ERR" || fail "bad message: $ERR"

expect_exit 2 "$KVBENCH" help no-such-command
one_line "$ERR"

expect_exit 2 "$KVBENCH"

# Every listed subcommand has working help in both spellings, and rejects unknown flags.
cmds=$("$KVBENCH" --help | awk '/^Commands:/{f=1;next} /^$/{f=0} f{print $1}')
for c in $cmds; do
  expect_exit 0 "$KVBENCH" "$c" --help
  grep -q "^Usage: kvbench $c" <<<"$OUT" || fail "$c --help has no usage line"
  help1=$OUT
  expect_exit 0 "$KVBENCH" help "$c"
  [[ "$OUT" == "$help1" ]] || fail "'help $c' differs from '$c --help'"
  expect_exit 2 "$KVBENCH" "$c" --definitely-not-a-flag
  one_line "$ERR"
  grep -q -- "--definitely-not-a-flag" <<<"$ERR" || fail "$c: error does not name the flag"
done
echo "cli: ok ($(wc -w <<<"$cmds") commands)"
