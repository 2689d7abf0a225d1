-- The safeguarding profile of a case (docs/design.md, Security and safeguarding): whom it protects and how to contact them.
ALTER TABLE cases
    ADD COLUMN protected_party_ids text[] NOT NULL DEFAULT '{}',
    ADD COLUMN safe_channel        text NOT NULL DEFAULT '',
    ADD COLUMN no_phone            boolean NOT NULL DEFAULT false;
