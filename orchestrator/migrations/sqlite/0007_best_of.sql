-- Best-of-N: a task may make several independent attempts, each a run of its own from
-- the same starting code (not continuing the one before), ranked by an optional check;
-- the best attempt's outputs become the task's. Each ended attempt is kept in
-- `task_runs`, the last one too.

-- How many attempts (1: the ordinary task), and the check run in each attempt's final
-- workspace.
ALTER TABLE tasks ADD COLUMN best_of INTEGER NOT NULL DEFAULT 1 CHECK (best_of >= 1);
ALTER TABLE tasks ADD COLUMN check_command TEXT;
-- The attempt (run number) whose outputs are the task's, once every attempt ended.
ALTER TABLE tasks ADD COLUMN chosen_run INTEGER;
