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
                     CHECK (status IN ('draft', 'sending', 'finished')),
    html             text,
    text             text,
    jobs_total       integer NOT NULL DEFAULT 0,
    -- Highest job id that email_client has acknowledged.
    dispatch_cursor  bigint NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    finished_at      timestamptz
);
CREATE INDEX campaigns_sending_idx ON campaigns (id) WHERE status = 'sending';

-- One email to one contact in one campaign. The address is copied so that the
-- record stays whole when the contact is deleted.
CREATE TABLE jobs (
    id           bigserial PRIMARY KEY,
    campaign_id  bigint NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    contact_id   bigint REFERENCES contacts ON DELETE SET NULL,
    email        text NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'retrying', 'sent', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    message_id   text,
    error        text,
    updated_at   timestamptz
);
CREATE INDEX jobs_campaign_idx ON jobs (campaign_id, id);
CREATE INDEX jobs_campaign_status_idx ON jobs (campaign_id, status, id);
