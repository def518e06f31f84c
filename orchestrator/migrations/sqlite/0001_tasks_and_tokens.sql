-- Tasks and API tokens. Times are milliseconds since the Unix epoch.

CREATE TABLE tasks (
    id              TEXT    NOT NULL PRIMARY KEY,
    owner           TEXT    NOT NULL,
    input_type      TEXT    NOT NULL CHECK (input_type IN ('GIT', 'ZIP')),
    git_url         TEXT,
    git_ref         TEXT,
    zip_name        TEXT,
    zip_key         TEXT,
    description     TEXT    NOT NULL,
    target_file     TEXT,
    model           TEXT,
    max_turns       INTEGER CHECK (max_turns >= 0),
    max_tokens      INTEGER CHECK (max_tokens >= 0),
    timeout_secs    INTEGER CHECK (timeout_secs >= 0),
    status          TEXT    NOT NULL CHECK (status IN ('PENDING', 'QUEUED', 'PROCESSING',
                        'DOWNLOADING_CODE', 'RUNNING_AGENT', 'UPLOADING_RESULTS',
                        'COMPLETED', 'FAILED', 'CANCELLED')),
    message         TEXT,
    pr_url          TEXT,
    attempt         INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    result_json     TEXT,
    runner_ref      TEXT,
    idempotency_key TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    deadline_at     INTEGER,
    UNIQUE (owner, idempotency_key),
    CHECK ((input_type = 'GIT' AND git_url IS NOT NULL)
        OR (input_type = 'ZIP' AND zip_name IS NOT NULL AND zip_key IS NOT NULL))
) STRICT;

-- An owner's listing, newest first.
CREATE INDEX tasks_owner_created ON tasks (owner, created_at, id);
-- The reconciler's scan for stuck tasks, and listings filtered by status.
CREATE INDEX tasks_status_updated ON tasks (status, updated_at);
-- The reconciler's scan for tasks past their deadline.
CREATE INDEX tasks_deadline ON tasks (deadline_at) WHERE deadline_at IS NOT NULL;

CREATE TABLE api_tokens (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    owner      TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
