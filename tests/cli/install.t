#!/usr/bin/env bash
# make install DESTDIR=... PREFIX=...: the tools, the manual pages, the bash
# completion and the examples land where the README says, the pages render
# without a warning, the completion completes, the examples parse, and
# make uninstall removes all of it. The tools are built by `make` in the
# top directory (the plain build); under the sanitizer build this test is
# the same, so it runs once.
. "$(dirname "$0")/../lib/harness.sh"

if [ "$BUILD" != "$TOP" ]; then
	skip "make install" "the plain build's test covers it"
	done_testing
	exit
fi
tools="chom-stage chom-switch chom-health chom-canary chom-backup chom-restore"
root=$T/root
prefix=/usr/local
run make -s -C "$TOP" install DESTDIR="$root" PREFIX="$prefix"
exits 0 "make install DESTDIR PREFIX"
for t in $tools; do
	ok "$t installed, executable" test -x "$root$prefix/bin/$t"
	run "$root$prefix/bin/$t" --version
	like "$OUT" "^$t \(chom\) [0-9]+\.[0-9]+\.[0-9]+$" "$t --version runs from the installed tree"
	ok "$t.1 installed" test -f "$root$prefix/share/man/man1/$t.1"
	run env MANWIDTH=80 man --warnings -l "$root$prefix/share/man/man1/$t.1"
	is "$ERR" "" "$t.1 renders without warnings"
	like "$OUT" "EXIT STATUS" "$t.1 has its EXIT STATUS"
	ok "completion of $t: a link to chom" test "$(readlink "$root$prefix/share/bash-completion/completions/$t")" = chom
done
run env MANWIDTH=80 man --warnings -l "$root$prefix/share/man/man7/chom.7"
is "$ERR" "" "chom.7 renders without warnings"
comp=$root$prefix/share/bash-completion/completions/chom
ok "completion file installed" test -f "$comp"
ok "completion file: bash -n" bash -n "$comp"
# What bash would offer after "chom-canary --ab" and "chom-switch --ro".
complete_words() { # WORD...
	bash -c '
source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
f=$(complete -p "$1" | sed -n "s/.*-F \([^ ]*\).*/\1/p")
"$f" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf "%s\n" "${COMPREPLY[@]}"' _ "$comp" "$@"
}
is "$(complete_words chom-canary --ab)" "--abort" "completion: chom-canary --ab -> --abort"
like "$(complete_words chom-switch --ro)" "^--rollback$" "completion: chom-switch --ro -> --rollback"
like "$(complete_words chom-backup --compress '')" "zstd" "completion: chom-backup --compress offers zstd"

doc=$root$prefix/share/doc/chom
ok "README under share/doc/chom" cmp -s "$doc/README" "$TOP/README"
for f in github-actions/deploy.yml github-actions/canary.yml cron.d/chom \
	nginx/site.conf chom.conf; do
	ok "examples/$f installed" cmp -s "$doc/examples/$f" "$TOP/examples/$f"
done
ok "examples/systemd: services and timers" test -n "$(ls "$doc"/examples/systemd/*.service "$doc"/examples/systemd/*.timer 2>/dev/null)"
is "$(cd "$TOP/examples" && find . -type f | sort)" "$(cd "$doc/examples" && find . -type f | sort)" \
	"every example installed"
for y in "$doc"/examples/github-actions/*.yml; do
	run /usr/bin/python3 -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); assert "jobs" in d' "$y"
	exits 0 "$(basename "$y") is a workflow (YAML with jobs)"
done
# Every key of the example configuration is one its tool accepts: each
# tool loads it for an action that changes nothing.
# The file as shipped (all commented), then with every setting uncommented:
# no tool finds a key it does not know (values are the tools' to judge).
sed -E 's/^#([a-z_0-9]+ = )/\1/' "$doc/examples/chom.conf" >"$T/all.conf"
ok "chom.conf: settings uncommented" test "$(grep -cE '^[a-z_0-9]+ = ' "$T/all.conf")" -ge 40
for conf in "$doc/examples/chom.conf" "$T/all.conf"; do
	w=$(basename "$conf")
	run chom-switch -c "$conf" -d "$T/nobase" --list
	unlike "$ERR" "unknown key" "$w: [switch] and [global] keys accepted"
	run chom-stage -c "$conf" -d "$T/nobase" "$T/missing.tar.gz"
	unlike "$ERR" "unknown key" "$w: [stage] keys accepted"
	run chom-health -c "$conf" --timeout 1 tcp://127.0.0.1:1
	unlike "$ERR" "unknown key" "$w: [health] keys accepted"
	run chom-canary -c "$conf" --state-dir "$T/state" --status
	unlike "$ERR" "unknown key" "$w: [canary] keys accepted"
	run chom-backup -c "$conf" --prune --keep-last 1 --to "file://$T/nobackups"
	unlike "$ERR" "unknown key" "$w: [backup] keys accepted"
	run chom-restore -c "$conf" --list --from "file://$T/nobackups"
	unlike "$ERR" "unknown key" "$w: [restore] keys accepted"
done
# The check can fail: a key no tool knows is refused.
printf '[canary]\nno_such_key = 1\n' >"$T/bad.conf"
run chom-canary -c "$T/bad.conf" --state-dir "$T/state" --status
like "$ERR" "unknown key 'no_such_key'" "a key chom-canary does not know is refused"

run make -s -C "$TOP" uninstall DESTDIR="$root" PREFIX="$prefix"
exits 0 "make uninstall"
is "$(find "$root" -type f -o -type l | wc -l)" 0 "make uninstall left no file or link"
done_testing
