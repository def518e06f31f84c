-- Follow-up messages: a finished task continues as a new run of the same task. The row
-- always holds the current run; the runs before it are kept in `task_runs`. Times are
-- milliseconds since the Unix epoch, by the store's clock.

-- Which run the row describes (from 1), and that run's follow-up message (NULL for the
-- first run, whose instruction is `description`).
ALTER TABLE tasks ADD COLUMN run_number INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tasks ADD COLUMN follow_up TEXT;

-- A finished run, archived when a follow-up started the next one.
CREATE TABLE task_runs (
    task_id     TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    run_number  INTEGER NOT NULL,
    instruction TEXT NOT NULL,
    status      TEXT NOT NULL,
    message     TEXT,
    result_json TEXT,
    finished_at INTEGER NOT NULL,
    PRIMARY KEY (task_id, run_number)
);
