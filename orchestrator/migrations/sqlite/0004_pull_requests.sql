-- Pull requests asked for with a task. Times are milliseconds since the Unix epoch.

-- One row per task that asked for a pull request (at submission or later, through the
-- retry route). `state` moves REQUESTED -> OPENING -> OPENED | FAILED | SKIPPED, and
-- FAILED (or an OPENING whose opener died) back to OPENING on a retry. A token sent with
-- the task is kept only sealed (encrypted with the server's key) and only until the pull
-- request is opened or skipped; tokens configured for the owner are never stored.
CREATE TABLE task_pull_requests (
    task_id      TEXT    NOT NULL PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
    base         TEXT,
    title        TEXT,
    sealed_token TEXT,
    state        TEXT    NOT NULL CHECK (state IN ('REQUESTED', 'OPENING', 'OPENED',
                     'FAILED', 'SKIPPED')),
    error        TEXT,
    tries        INTEGER NOT NULL DEFAULT 0 CHECK (tries >= 0),
    updated_at   INTEGER NOT NULL
) STRICT;
