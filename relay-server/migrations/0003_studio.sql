-- The creator's side: uploads sent in chunks and cut by the relay, and the videos (a job's
-- ladder with its title, tags, visibility and captions) their creators told of.
CREATE TABLE IF NOT EXISTS uploads (
    id          TEXT PRIMARY KEY,
    account     TEXT NOT NULL,
    name        TEXT NOT NULL,
    size        BIGINT NOT NULL,
    blake3      TEXT NOT NULL,
    heights     TEXT NOT NULL,
    state       TEXT NOT NULL,
    error       TEXT,
    source      TEXT,
    segments    BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    ladder      TEXT,
    added       BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS videos (
    job         BIGINT PRIMARY KEY,
    creator     TEXT NOT NULL,
    source      TEXT NOT NULL,
    title       TEXT NOT NULL,
    description TEXT NOT NULL,
    tags        TEXT NOT NULL,
    visibility  TEXT NOT NULL,
    captions    TEXT,
    content     TEXT,
    added       BIGINT NOT NULL
);
