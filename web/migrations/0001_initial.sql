CREATE TABLE contacts (
    id          bigserial PRIMARY KEY,
    email       text NOT NULL,
    name        text NOT NULL DEFAULT '',
    first_name  text NOT NULL DEFAULT '',
    last_name   text NOT NULL DEFAULT '',
    attributes  jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Addresses are unique without regard to case; imports upsert on this index.
CREATE UNIQUE INDEX contacts_email_key ON contacts (lower(email));
-- Search matches any part of the address or the name, ignoring case. The name
-- is made of the first and last names when none is given. Keeping this index
-- costs imports about a fifth of their speed; without it a search scans every
-- contact (0.7 s for 1,000,000 of them).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX contacts_search_idx ON contacts USING gin ((email || ' ' || name) gin_trgm_ops);

CREATE TABLE segments (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX segments_name_key ON segments (lower(name));

CREATE TABLE segment_contacts (
    segment_id  bigint NOT NULL REFERENCES segments ON DELETE CASCADE,
    contact_id  bigint NOT NULL REFERENCES contacts ON DELETE CASCADE,
    PRIMARY KEY (segment_id, contact_id)
);
CREATE INDEX segment_contacts_contact_idx ON segment_contacts (contact_id);

CREATE TABLE templates (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    html        text NOT NULL,
    text        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A campaign copies its template's bodies when it is sent, so editing or
-- deleting the template later changes nothing about what was sent.
CREATE TABLE campaigns (
    id               bigserial PRIMARY KEY,
    name             text NOT NULL,
    segment_id       bigint REFERENCES segments ON DELETE SET NULL,
    template_id      bigint REFERENCES templates ON DELETE SET NULL,
    subject          text NOT NULL,
    status           text NOT NULL DEFAULT 'draft'
                     CHECK (status IN ('draft', 'sending', 'paused', 'cancelled', 'finished')),
    pause_reason     text,
    html             text,
    text             text,
    jobs_total       integer NOT NULL DEFAULT 0,
    -- Each "retry failed jobs" starts a new round of hand-over.
    dispatch_round   integer NOT NULL DEFAULT 0,
    -- Highest job id of this round that email_client has acknowledged.
    dispatch_cursor  bigint NOT NULL DEFAULT 0,
    -- Why the last hand-over failed (email_client unreachable), until one succeeds.
    dispatch_error   text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    finished_at      timestamptz
);
CREATE INDEX campaigns_active_idx ON campaigns (id) WHERE status IN ('sending', 'paused');

-- One email to one contact in one campaign. The address is copied so that the
-- record stays whole when the contact is deleted.
--
-- No foreign keys: checking two of them for every row made creating the jobs
-- of a 1,000,000-contact campaign three times slower. A campaign that has jobs
-- is never deleted (only drafts are), and a job whose contact was deleted
-- keeps the old contact id, which no other contact will take.
CREATE TABLE jobs (
    id           bigserial PRIMARY KEY,
    campaign_id  bigint NOT NULL,
    contact_id   bigint,
    email        text NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'retrying', 'sent', 'failed', 'cancelled')),
    attempts     integer NOT NULL DEFAULT 0,
    message_id   text,
    error        text,
    updated_at   timestamptz
);
CREATE INDEX jobs_campaign_idx ON jobs (campaign_id, id);
CREATE INDEX jobs_campaign_status_idx ON jobs (campaign_id, status, id);

-- Jobs per campaign and status, kept by statement-level triggers so that a
-- campaign's counts cost one index lookup whatever its size. Each INSERT or
-- UPDATE of jobs adjusts the counts once, from its transition tables.
CREATE TABLE campaign_job_counts (
    campaign_id  bigint NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    status       text NOT NULL,
    jobs         bigint NOT NULL,
    PRIMARY KEY (campaign_id, status)
);

CREATE FUNCTION count_inserted_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO campaign_job_counts (campaign_id, status, jobs)
    SELECT campaign_id, status, count(*) FROM inserted GROUP BY campaign_id, status
    ON CONFLICT (campaign_id, status) DO UPDATE SET jobs = campaign_job_counts.jobs + EXCLUDED.jobs;
    RETURN NULL;
END $$;

CREATE FUNCTION count_updated_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO campaign_job_counts (campaign_id, status, jobs)
    SELECT campaign_id, status, sum(change) FROM (
        SELECT campaign_id, status, -1 AS change FROM before_update
        UNION ALL
        SELECT campaign_id, status, 1 AS change FROM after_update
    ) AS changes
    GROUP BY campaign_id, status
    HAVING sum(change) <> 0
    -- Sorted so that concurrent statements lock count rows in one order.
    ORDER BY campaign_id, status
    ON CONFLICT (campaign_id, status) DO UPDATE SET jobs = campaign_job_counts.jobs + EXCLUDED.jobs;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_counted_on_insert AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION count_inserted_jobs();
CREATE TRIGGER jobs_counted_on_update AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS before_update NEW TABLE AS after_update
    FOR EACH STATEMENT EXECUTE FUNCTION count_updated_jobs();
