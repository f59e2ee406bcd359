-- v4: tags of items.
CREATE TABLE tags (
	id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
	item_id INT UNSIGNED NOT NULL,
	tag VARCHAR(50) NOT NULL,
	CONSTRAINT tags_item_id_foreign FOREIGN KEY (item_id) REFERENCES items (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO tags (item_id, tag) SELECT id, 'new' FROM items;
