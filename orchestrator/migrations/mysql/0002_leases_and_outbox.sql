-- Leases on claimed tasks, and the outbox that gets every new task onto the queue.
-- Times are milliseconds since the Unix epoch, by the database server's clock.

-- Who holds a claimed task (a worker's lease id) and until when. A released task has no
-- holder; its expiry is then when the reconciler looks at it again.
ALTER TABLE tasks
    ADD COLUMN lease_holder VARCHAR(255) NULL,
    ADD COLUMN lease_expires_at BIGINT NULL,
    ADD KEY tasks_status_lease (status, lease_expires_at);

-- One entry per task created and not yet known to be on the queue; written in the same
-- transaction as the task, removed once its message was sent.
CREATE TABLE task_outbox (
    task_id    VARCHAR(64) NOT NULL PRIMARY KEY,
    created_at BIGINT      NOT NULL,
    KEY task_outbox_created (created_at, task_id),
    CONSTRAINT task_outbox_task FOREIGN KEY (task_id) REFERENCES tasks (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Tasks an earlier version stored as PENDING and never queued go through the outbox.
INSERT INTO task_outbox (task_id, created_at)
    SELECT id, updated_at FROM tasks WHERE status = 'PENDING';
UPDATE tasks SET status = 'QUEUED' WHERE status = 'PENDING';
