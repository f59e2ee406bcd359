<?php
// What both entry points need: the release's version, its .env (a link into
// BASE/shared, made by chom-stage --link .env) and the database.
declare(strict_types=1);

const APP_ROOT = __DIR__;

// The release's version, "vN", written into the artifact by the build.
function app_version(): string
{
    $v = @file_get_contents(APP_ROOT . '/VERSION');
    return $v === false ? 'v?' : trim($v);
}

// Its number N, for what changes from one version to the next.
function app_version_number(): int
{
    return (int) ltrim(app_version(), 'v');
}

// KEY=VALUE lines of .env, as Laravel reads them (no interpolation).
function app_env(): array
{
    static $env = null;
    if ($env !== null) {
        return $env;
    }
    $env = [];
    $lines = @file(APP_ROOT . '/.env', FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES);
    if ($lines === false) {
        throw new RuntimeException('no .env in ' . APP_ROOT);
    }
    foreach ($lines as $l) {
        if ($l[0] === '#' || strpos($l, '=') === false) {
            continue;
        }
        [$k, $v] = explode('=', $l, 2);
        $env[trim($k)] = trim(trim($v), '"');
    }
    return $env;
}

function app_db(): PDO
{
    $e = app_env();
    $dsn = sprintf('mysql:unix_socket=%s;dbname=%s;charset=utf8mb4',
        $e['DB_SOCKET'] ?? '', $e['DB_DATABASE'] ?? '');
    return new PDO($dsn, $e['DB_USERNAME'] ?? '', $e['DB_PASSWORD'] ?? '', [
        PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
        PDO::ATTR_TIMEOUT => 5,
    ]);
}

// The migrations this release ships: the names of migrations/*.sql, sorted.
function app_migrations(): array
{
    $files = glob(APP_ROOT . '/migrations/*.sql') ?: [];
    $names = array_map(fn ($f) => basename($f, '.sql'), $files);
    sort($names, SORT_STRING);
    return $names;
}
