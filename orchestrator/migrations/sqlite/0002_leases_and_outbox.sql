-- Leases on claimed tasks, and the outbox that gets every new task onto the queue.
-- Times are milliseconds since the Unix epoch, by the store's clock.

-- Who holds a claimed task (a worker's lease id) and until when. A released task has no
-- holder; its expiry is then when the reconciler looks at it again.
ALTER TABLE tasks ADD COLUMN lease_holder TEXT;
ALTER TABLE tasks ADD COLUMN lease_expires_at INTEGER;

-- The reconciler's scans for claimed tasks whose lease ran out, one per kind of repair.
CREATE INDEX tasks_status_lease ON tasks (status, lease_expires_at);
-- Deadlines are enforced by the run's holder now, not by a scan.
DROP INDEX tasks_deadline;

-- One entry per task created and not yet known to be on the queue; written in the same
-- transaction as the task, removed once its message was sent.
CREATE TABLE task_outbox (
    task_id    TEXT    NOT NULL PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX task_outbox_created ON task_outbox (created_at, task_id);

-- Tasks an earlier version stored as PENDING and never queued go through the outbox.
INSERT INTO task_outbox (task_id, created_at)
    SELECT id, updated_at FROM tasks WHERE status = 'PENDING';
UPDATE tasks SET status = 'QUEUED' WHERE status = 'PENDING';
