<?php
// php migrate.php: the release's migrations, as `php artisan migrate
// --force` runs them. Each migrations/NAME.sql not yet recorded in the
// table migrations is run, in name order, then recorded with the batch
// number of this run; one already recorded is skipped, so a second run
// changes nothing ("Nothing to migrate."). A lock (GET_LOCK) keeps two runs
// apart. Exit 0 when every migration of the release is recorded, 1 on an
// error, naming the migration.
declare(strict_types=1);
require __DIR__ . '/bootstrap.php';

try {
    $db = app_db();
    if ((int) $db->query("SELECT GET_LOCK('app-migrate', 30)")->fetchColumn() !== 1) {
        fwrite(STDERR, "migrate: another migration holds the lock\n");
        exit(1);
    }
    $db->exec('CREATE TABLE IF NOT EXISTS migrations (
        id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
        migration VARCHAR(255) NOT NULL UNIQUE,
        batch INT NOT NULL,
        ran_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4');
    $ran = $db->query('SELECT migration FROM migrations')->fetchAll(PDO::FETCH_COLUMN);
    $todo = array_values(array_diff(app_migrations(), $ran));
    if (!$todo) {
        echo "Nothing to migrate.\n";
        exit(0);
    }
    $batch = 1 + (int) $db->query('SELECT COALESCE(MAX(batch), 0) FROM migrations')->fetchColumn();
    $record = $db->prepare('INSERT INTO migrations (migration, batch) VALUES (?, ?)');
    foreach ($todo as $m) {
        $sql = file_get_contents(APP_ROOT . "/migrations/$m.sql");
        // Statements end with a semicolon at the end of a line; -- comments
        // are dropped.
        $sql = preg_replace('/^\s*--.*$/m', '', $sql);
        foreach (preg_split('/;\s*$/m', $sql) as $stmt) {
            if (trim($stmt) !== '') {
                try {
                    $db->exec($stmt);
                } catch (PDOException $e) {
                    fwrite(STDERR, "migrate: $m: " . $e->getMessage() . "\n");
                    exit(1);
                }
            }
        }
        $record->execute([$m, $batch]);
        echo "Migrated: $m\n";
    }
    exit(0);
} catch (Throwable $e) {
    fwrite(STDERR, 'migrate: ' . $e->getMessage() . "\n");
    exit(1);
}
