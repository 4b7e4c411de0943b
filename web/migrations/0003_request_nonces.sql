-- Nonces of the signed requests that email_client sent to web. A nonce is
-- kept until its request's timestamp is more than five minutes old, after
-- which the request is rejected for its age anyway; a second request with a
-- stored nonce is rejected as a replay.
CREATE TABLE request_nonces (
    nonce       text PRIMARY KEY,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX request_nonces_expires_at_idx ON request_nonces (expires_at);
