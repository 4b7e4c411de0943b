-- When a contact unsubscribed through the link in an email; NULL while
-- subscribed. Campaigns leave out the contacts who unsubscribed.
ALTER TABLE contacts ADD COLUMN unsubscribed_at timestamptz;
