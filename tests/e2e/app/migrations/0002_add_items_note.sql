-- v2: a note on every item (a column added while v1 serves: v1 names its
-- columns, so it does not see it).
ALTER TABLE items ADD COLUMN note VARCHAR(255) NULL;
UPDATE items SET note = CONCAT('note of ', name);
