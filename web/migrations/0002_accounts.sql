-- People who may sign in. Bumping session_version (at sign-out and password
-- change) makes every session cookie issued before it stop working.
CREATE TABLE users (
    id               bigserial PRIMARY KEY,
    email            text NOT NULL,
    password_hash    text NOT NULL,
    session_version  integer NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- API tokens are random, so their SHA-256 digest is enough to store them.
-- A token created on the settings page names its creator and goes with them;
-- one created by `python -m web create-token` has no user.
CREATE TABLE api_tokens (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL,
    token_sha256  text NOT NULL UNIQUE,
    user_id       bigint REFERENCES users ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz
);

-- Failed sign-ins per account (the lower-cased address typed) and per client
-- address, shared by every web process. A row counts the failures since
-- window_started_at; a failure after the window ended starts a new one.
CREATE TABLE sign_in_failures (
    scope              text NOT NULL CHECK (scope IN ('account', 'address')),
    key                text NOT NULL,
    failures           integer NOT NULL,
    window_started_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
