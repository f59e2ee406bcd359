#!/bin/sh
# canary.sh ARTIFACT: the canary release of chom-canary(1) (EXAMPLES, A
# canary release from CI), with the pre-deploy point and the migrations of
# deploy.sh, as tests/e2e/pipeline.t runs it on one machine.
#
# Two nginx servers on loopback ports, blue and green, each serve the
# release that a link of its own, BASE/blue or BASE/green, points at, each
# through a PHP-FPM pool of its own; the public server proxies to the
# upstream block that chom-canary owns. The pools take turns: the new
# release goes to the one without traffic, which becomes the canary, while
# the other keeps serving. The state of the last canary says which is live.
#
#   1. chom-stage; chom-backup --db --label pre-deploy; php migrate.php
#   2. the idle pool's link at the new release; PHP-FPM reloaded;
#      chom-health of the idle pool's /health before it gets any traffic
#   3. chom-canary --stable LIVE --canary IDLE (the rest from the [canary]
#      section of the configuration: upstream file, nginx commands, access
#      log, steps, thresholds, state directory)
#   4. promoted: chom-switch --next, so that current is the release now live
#
# Exit status: 0 promoted; 1 stopped or rolled back, the live pool serves
# everything as before; 3 a canary is running; 4 the rollback failed.
#
# Settings, from the environment (defaults: chom-canary(1)'s server):
#   CHOM_BASE, CHOM_CONFIG    as for every chom tool
#   CANARY_BLUE, CANARY_GREEN the pools' addresses (127.0.0.1:8081, :8082)
#   DEPLOY_RELOAD             PHP-FPM's reload (sudo systemctl reload php8.2-fpm)
#   DEPLOY_PHP                the PHP CLI (php)
set -u
[ $# -eq 1 ] || { echo "usage: canary.sh ARTIFACT" >&2; exit 2; }
art=$1
base=${CHOM_BASE:-/var/www/chom}
blue=${CANARY_BLUE:-127.0.0.1:8081}
green=${CANARY_GREEN:-127.0.0.1:8082}
reload=${DEPLOY_RELOAD:-sudo systemctl reload php8.2-fpm}
php=${DEPLOY_PHP:-php}

rel=$(chom-stage -q --checksums "$art.sha256" --require-checksum \
	--link storage --link .env "$art") || exit
chom-backup -q --db --label pre-deploy >/dev/null || exit
(cd "$rel" && $php migrate.php >&2) || exit

# The live pool: blue before the first run.
case $(chom-canary --status --json | jq -r .status) in
promoted) live=$(chom-canary --status --json | jq -r .canary) ;;
rolled-back) live=$(chom-canary --status --json | jq -r .stable) ;;
'') live=$blue ;;
*)
	echo "canary: a canary is running, or needs a person" >&2
	exit 3
	;;
esac
if [ "$live" = "$blue" ]; then
	idle=green idle_addr=$green
else
	idle=blue idle_addr=$blue
fi
echo "canary: live $live, canary $idle ($idle_addr) on $rel" >&2

# Start the canary pool on the new release, and check it before it gets
# any traffic.
ln -sfn "releases/${rel##*/}" "$base/$idle.tmp" &&
	mv -T "$base/$idle.tmp" "$base/$idle" || exit
sh -c "$reload" || exit
chom-health --retries 10 --interval 0.5 --expect-body '^ok ' \
	"http://$idle_addr/health" >&2 || exit

chom-canary --stable "$live" --canary "$idle_addr"
case $? in
0) chom-switch -q --next >/dev/null ;; # current: the release now live
1 | 130 | 143)
	echo "canary: rolled back: $live serves everything, as before" >&2
	exit 1
	;;
3)
	echo "canary: another canary is running; try later" >&2
	exit 3
	;;
4)
	echo "canary: ROLLBACK FAILED: see the upstream file" >&2
	exit 4
	;;
*) exit 2 ;;
esac
