-- Tasks and API tokens (the original `tasks` table). Times are milliseconds since the
-- Unix epoch. Text compares byte for byte (utf8mb4_bin): owners, idempotency keys and
-- token hashes are case-sensitive, as on SQLite.

CREATE TABLE tasks (
    id              VARCHAR(64)  NOT NULL PRIMARY KEY,
    owner           VARCHAR(255) NOT NULL,
    input_type      VARCHAR(8)   NOT NULL CHECK (input_type IN ('GIT', 'ZIP')),
    git_url         TEXT,
    git_ref         TEXT,
    zip_name        TEXT,
    zip_key         TEXT,
    description     MEDIUMTEXT   NOT NULL,
    target_file     TEXT,
    model           TEXT,
    max_turns       BIGINT CHECK (max_turns >= 0),
    max_tokens      BIGINT CHECK (max_tokens >= 0),
    timeout_secs    BIGINT CHECK (timeout_secs >= 0),
    status          VARCHAR(32)  NOT NULL CHECK (status IN ('PENDING', 'QUEUED', 'PROCESSING',
                        'DOWNLOADING_CODE', 'RUNNING_AGENT', 'UPLOADING_RESULTS',
                        'COMPLETED', 'FAILED', 'CANCELLED')),
    message         MEDIUMTEXT,
    pr_url          TEXT,
    attempt         BIGINT       NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    result_json     MEDIUMTEXT,
    runner_ref      TEXT,
    idempotency_key VARCHAR(255),
    created_at      BIGINT       NOT NULL,
    updated_at      BIGINT       NOT NULL,
    deadline_at     BIGINT,
    UNIQUE KEY tasks_owner_key (owner, idempotency_key),
    KEY tasks_owner_created (owner, created_at, id),
    KEY tasks_status_updated (status, updated_at),
    CHECK ((input_type = 'GIT' AND git_url IS NOT NULL)
        OR (input_type = 'ZIP' AND zip_name IS NOT NULL AND zip_key IS NOT NULL))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE api_tokens (
    token_hash VARCHAR(255) NOT NULL PRIMARY KEY,
    owner      VARCHAR(255) NOT NULL,
    created_at BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
