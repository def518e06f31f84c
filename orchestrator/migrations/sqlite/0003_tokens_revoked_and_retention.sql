-- Revocable API tokens, per-owner live-task counts, and retention of finished tasks'
-- files. Times are milliseconds since the Unix epoch, by the store's clock.

-- A revoked token stays listed (who had it, when it stopped working) but is refused.
ALTER TABLE api_tokens ADD COLUMN revoked_at INTEGER;

-- Counting an owner's live tasks (the per-owner cap) reads this index only.
CREATE INDEX tasks_owner_status ON tasks (owner, status);

-- When a finished task's files (workspace, outputs, upload, run folder) were deleted.
ALTER TABLE tasks ADD COLUMN purged_at INTEGER;
-- The janitor's scan: finished tasks whose files are still there, oldest first.
CREATE INDEX tasks_unpurged ON tasks (updated_at, id)
    WHERE purged_at IS NULL AND status IN ('COMPLETED', 'FAILED', 'CANCELLED');
