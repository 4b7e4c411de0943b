-- Gateway attempts of a job in the rounds before its current one: "Retry
-- failed jobs" starts a new round, in which email_client counts from 1
-- again. A job's attempts, as shown, are these plus `attempts`.
ALTER TABLE jobs ADD COLUMN earlier_attempts integer NOT NULL DEFAULT 0;
