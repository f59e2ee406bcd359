#!/bin/sh
# deploy.sh ARTIFACT: the blue-green deploy of the README ("A blue-green
# deploy from CI") and of chom(7) (EXAMPLES, and the pre-deploy point of
# RECOVERY RUNBOOK, A failed deployment), as tests/e2e/pipeline.t runs it on
# one machine. On a server it is the script a CI job runs over SSH.
#
#   1. chom-stage: unpack and verify ARTIFACT (ARTIFACT.sha256 beside it);
#      BASE/next points at the new release
#   2. chom-backup --db --label pre-deploy: the database just before the
#      migrations change it
#   3. php migrate.php in the staged release (php artisan migrate --force)
#   4. chom-health of the staged release, /up, through the nginx server of
#      BASE/next: the release boots; nothing is live yet
#   5. chom-switch --next --exec RELOAD: live, PHP-FPM reloaded; a failed
#      reload switches back by itself (exit 1)
#   6. chom-health smoke checks of the live site, waiting for PHP-FPM's
#      workers after the reload: /health (reads the database, and says the
#      new version) and / (renders the new version's page)
#   7. if they fail: chom-switch --rollback --exec RELOAD, exit 1
#
# Exit status: that of the step that failed, as the README says: 1 the
# deploy stopped and production is on the previous release, 3 another
# deploy held the lock, 4 the rollback failed too: a person must act.
#
# Settings, from the environment (defaults: the README's server):
#   CHOM_BASE, CHOM_CONFIG    as for every chom tool (the [backup] section
#                             names the targets, recipient, db_defaults)
#   DEPLOY_NEXT_URL           the server of BASE/next (http://127.0.0.1:8081)
#   DEPLOY_LIVE_URL           the live site (https://example.org)
#   DEPLOY_RELOAD             PHP-FPM's reload (sudo systemctl reload php8.2-fpm)
#   DEPLOY_SMOKE_DEADLINE     seconds the smoke checks may wait (30)
#   DEPLOY_PHP                the PHP CLI (php)
set -u
[ $# -eq 1 ] || { echo "usage: deploy.sh ARTIFACT" >&2; exit 2; }
art=$1
next_url=${DEPLOY_NEXT_URL:-http://127.0.0.1:8081}
live_url=${DEPLOY_LIVE_URL:-https://example.org}
reload=${DEPLOY_RELOAD:-sudo systemctl reload php8.2-fpm}
deadline=${DEPLOY_SMOKE_DEADLINE:-30}
php=${DEPLOY_PHP:-php}

# 1. Unpack and verify; points BASE/next at the new release.
rel=$(chom-stage -q --checksums "$art.sha256" --require-checksum \
	--link storage --link .env "$art") || exit
ver=$(cat "$rel/VERSION") || exit 1
echo "deploy: staged $rel ($ver)" >&2

# 2. The database as it was before this deploy, for the runbook.
chom-backup -q --db --label pre-deploy >/dev/null || exit

# 3. The release's migrations, run from the staged release.
(cd "$rel" && $php migrate.php >&2) || exit

# 4. Health check of the staged release, through the nginx server that
#    serves BASE/next/public.
chom-health --retries 5 --interval 0.5 "$next_url/up" >&2 || exit

# 5. Make it live and reload PHP-FPM; a failed reload switches back (exit 1)
#    and leaves next on the staged release, so this can be run again.
chom-switch --next --exec "$reload" >/dev/null || exit

# 6. Smoke checks of the live site; roll back on failure.
if ! chom-health --deadline "$deadline" --interval 0.5 -f - >&2 <<EOF
$live_url/health --expect-body '^ok ${ver}[^0-9]'
$live_url/ --expect-body '^app $ver: '
EOF
then
	echo "deploy: smoke check of $ver failed; rolling back" >&2
	chom-switch --rollback --exec "$reload" >/dev/null || exit 4
	exit 1
fi
echo "deploy: $ver is live" >&2
