-- Imports ran at half the speed the product promises (50,000 rows per
-- second); these changes each remove a cost paid per imported row.

-- Search matches the start of the address or of the name, ignoring case,
-- using B-tree indexes. The trigram index it replaces found any part of
-- them, but keeping it up to date cost imports a third of their speed, and
-- a third index, for last names, would cost another tenth. The unique index
-- on addresses serves address prefixes too.
DROP INDEX contacts_search_idx;
DROP INDEX contacts_email_key;
CREATE UNIQUE INDEX contacts_email_key ON contacts (lower(email) text_pattern_ops);
CREATE INDEX contacts_name_prefix_idx ON contacts (lower(name) text_pattern_ops);

-- Segment memberships keep their references by themselves instead of with
-- foreign keys: a foreign key checks every inserted row on its own, which
-- halved the speed of an import into a segment. Instead, whatever adds
-- memberships locks the segment and the contacts it adds (FOR KEY SHARE,
-- or by upserting the contacts in the same statement), so that neither can
-- be deleted before it commits; and deleting contacts or segments deletes
-- their memberships here, in the same statement.
ALTER TABLE segment_contacts
    DROP CONSTRAINT segment_contacts_segment_id_fkey,
    DROP CONSTRAINT segment_contacts_contact_id_fkey;

CREATE FUNCTION delete_memberships_of_contacts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM segment_contacts WHERE contact_id IN (SELECT id FROM deleted_rows);
    RETURN NULL;
END
$$;

CREATE FUNCTION delete_memberships_of_segments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM segment_contacts WHERE segment_id IN (SELECT id FROM deleted_rows);
    RETURN NULL;
END
$$;

CREATE TRIGGER contacts_delete_memberships AFTER DELETE ON contacts
    REFERENCING OLD TABLE AS deleted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delete_memberships_of_contacts();

CREATE TRIGGER segments_delete_memberships AFTER DELETE ON segments
    REFERENCING OLD TABLE AS deleted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delete_memberships_of_segments();
