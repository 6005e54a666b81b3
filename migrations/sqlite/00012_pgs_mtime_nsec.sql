-- A file keeps the nanoseconds of its modification time, so that rsync's quick check can tell
-- a same-size edit made within the same second from the file uploaded before it. Files stored
-- before this step keep 0: they are compared in whole seconds, as before.

-- +goose Up
ALTER TABLE pgs_files ADD COLUMN mtime_nsec INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE pgs_files DROP COLUMN mtime_nsec;
