-- A serial id on every canonical event, in the order the sink stored them, so `pipeline reemit`
-- can page through a range with a keyset (id > last) that resumes where an interrupted run
-- stopped and re-emits each entity's events in the order the worker first published them
-- (event_id is a UUIDv5 and says nothing about order). Rows already stored are numbered in
-- the order the table holds them. recorded_at gets an index for the time filter.
-- Adding the column rewrites the table under an exclusive lock: on a large table the worker
-- waits for it, so migrate such a deployment in a quiet moment.
ALTER TABLE commerce_events ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX commerce_events_id ON commerce_events (id);
CREATE INDEX commerce_events_recorded ON commerce_events (recorded_at);
