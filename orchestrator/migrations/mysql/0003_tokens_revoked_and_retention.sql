-- Revocable API tokens, per-owner live-task counts, and retention of finished tasks'
-- files. Times are milliseconds since the Unix epoch, by the database server's clock.

-- A revoked token stays listed (who had it, when it stopped working) but is refused.
ALTER TABLE api_tokens ADD COLUMN revoked_at BIGINT NULL;

-- When a finished task's files (workspace, outputs, upload, run folder) were deleted;
-- counting an owner's live tasks (the per-owner cap) reads the first index only; the
-- janitor's scan for finished tasks whose files are still there, the second.
ALTER TABLE tasks
    ADD COLUMN purged_at BIGINT NULL,
    ADD KEY tasks_owner_status (owner, status),
    ADD KEY tasks_unpurged (purged_at, status, updated_at);
