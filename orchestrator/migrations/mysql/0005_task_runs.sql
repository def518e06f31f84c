-- Follow-up messages: a finished task continues as a new run of the same task. The row
-- always holds the current run; the runs before it are kept in `task_runs`. Times are
-- milliseconds since the Unix epoch, by the database server's clock.

-- Which run the row describes (from 1), and that run's follow-up message (NULL for the
-- first run, whose instruction is `description`).
ALTER TABLE tasks
    ADD COLUMN run_number BIGINT NOT NULL DEFAULT 1 CHECK (run_number >= 1),
    ADD COLUMN follow_up MEDIUMTEXT NULL;

-- A finished run, archived when a follow-up started the next one.
CREATE TABLE task_runs (
    task_id     VARCHAR(64) NOT NULL,
    run_number  BIGINT NOT NULL,
    instruction MEDIUMTEXT NOT NULL,
    status      VARCHAR(32) NOT NULL,
    message     MEDIUMTEXT NULL,
    result_json MEDIUMTEXT NULL,
    finished_at BIGINT NOT NULL,
    PRIMARY KEY (task_id, run_number),
    CONSTRAINT task_runs_task FOREIGN KEY (task_id) REFERENCES tasks (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
