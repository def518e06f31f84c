-- Pull requests asked for with a task. Times are milliseconds since the Unix epoch, by
-- the database server's clock.

-- One row per task that asked for a pull request (at submission or later, through the
-- retry route). `state` moves REQUESTED -> OPENING -> OPENED | FAILED | SKIPPED, and
-- FAILED (or an OPENING whose opener died) back to OPENING on a retry. A token sent with
-- the task is kept only sealed (encrypted with the server's key) and only until the pull
-- request is opened or skipped; tokens configured for the owner are never stored.
CREATE TABLE task_pull_requests (
    task_id      VARCHAR(64)  NOT NULL PRIMARY KEY,
    base         VARCHAR(1024) NULL,
    title        TEXT         NULL,
    sealed_token TEXT         NULL,
    state        VARCHAR(16)  NOT NULL,
    error        TEXT         NULL,
    tries        INT          NOT NULL DEFAULT 0,
    updated_at   BIGINT       NOT NULL,
    CONSTRAINT task_pull_requests_state CHECK (state IN ('REQUESTED', 'OPENING', 'OPENED',
        'FAILED', 'SKIPPED')),
    CONSTRAINT task_pull_requests_task FOREIGN KEY (task_id) REFERENCES tasks (id)
        ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
