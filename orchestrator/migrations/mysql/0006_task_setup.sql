-- A task's setup script: run in the workspace before the agent, with the network (see
-- `agent_rs::setup`). NULL when the task has none.
ALTER TABLE tasks ADD COLUMN setup MEDIUMTEXT NULL;
