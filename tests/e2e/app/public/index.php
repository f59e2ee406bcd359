<?php
// The front controller of the e2e test's application (tests/e2e/pipeline.t).
//
//   GET /up      200 "up vN": the release boots; no database (Laravel's /up)
//   GET /health  200 "ok vN": the database answers and holds every migration
//                this release ships; else 500 "error vN: REASON"
//   GET /        200 "app vN: ...": a page that reads the database
//
// Two versions carry a bug on purpose, for the pipeline to catch:
//   v3  /health needs a table, feature_flags, that no migration creates (a
//       migration forgotten in the release): 500, while / works
//   v5  / answers 500 to about 30% of requests: the canary to roll back
declare(strict_types=1);
require dirname(__DIR__) . '/bootstrap.php';

header('Content-Type: text/plain; charset=utf-8');
header('Cache-Control: no-store');
$v = app_version();
$n = app_version_number();
$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH) ?: '/';

function answer(int $status, string $body): void
{
    http_response_code($status);
    echo $body, "\n";
    exit;
}

try {
    switch ($path) {
    case '/up':
        answer(200, "up $v");

    case '/health':
        $db = app_db();
        $ran = $db->query('SELECT migration FROM migrations')->fetchAll(PDO::FETCH_COLUMN);
        $missing = array_diff(app_migrations(), $ran);
        if ($missing) {
            answer(500, "error $v: migrations not run: " . implode(' ', $missing));
        }
        $db->query('SELECT COUNT(*) FROM items')->fetchColumn();
        if ($n >= 4) {
            $db->query('SELECT COUNT(*) FROM tags')->fetchColumn();
        }
        if ($n === 3) {
            $db->query('SELECT COUNT(*) FROM feature_flags')->fetchColumn();
        }
        answer(200, "ok $v");

    case '/':
        if ($n === 5 && mt_rand(1, 100) <= 30) {
            answer(500, "error $v: the bug of v5");
        }
        $db = app_db();
        if ($n >= 2) {
            [$items, $notes] = $db->query('SELECT COUNT(*), COUNT(note) FROM items')
                ->fetch(PDO::FETCH_NUM);
            $page = "app $v: $items items, $notes notes";
        } else {
            $items = $db->query('SELECT COUNT(*) FROM items')->fetchColumn();
            $page = "app $v: $items items";
        }
        if ($n >= 4) {
            $page .= ', ' . $db->query('SELECT COUNT(*) FROM tags')->fetchColumn() . ' tags';
        }
        answer(200, $page);

    default:
        answer(404, "not found: $path");
    }
} catch (Throwable $e) {
    error_log("app $v: $path: " . $e->getMessage());
    answer(500, "error $v: " . $e->getMessage());
}
