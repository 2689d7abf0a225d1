-- A party's language (English, Welsh, both, or another they asked for, sent in English) and
-- accessible format (large print, or braille/audio which a caseworker arranges); the case's
-- children as letters name them; on each notification, the language it went in and why the
-- preference was not followed, if it was not.

ALTER TABLE contact_preferences
    ADD COLUMN language text NOT NULL DEFAULT '',
    ADD COLUMN accessible_format text NOT NULL DEFAULT ''
        CHECK (accessible_format IN ('', 'large_print', 'braille', 'audio'));

CREATE TABLE children (
    case_id        text NOT NULL,
    child_id       text NOT NULL,
    name           text NOT NULL DEFAULT '',
    date_of_birth  text NOT NULL DEFAULT '',
    PRIMARY KEY (case_id, child_id)
);

ALTER TABLE outbox
    ADD COLUMN language text NOT NULL DEFAULT 'en',
    ADD COLUMN language_note text NOT NULL DEFAULT '',
    ADD COLUMN provider_reference text NOT NULL DEFAULT '';

-- A letter in braille or audio waits for a caseworker instead of going to the post.
ALTER TABLE outbox DROP CONSTRAINT outbox_status_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_status_check
    CHECK (status IN ('queued', 'sent', 'delivered', 'failed', 'for_caseworker'));
