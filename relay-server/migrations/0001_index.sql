-- The relay's index: the peers it has seen and the content it serves. Portable between SQLite
-- and Postgres (the relay runs on either through sqlx's Any driver).
CREATE TABLE IF NOT EXISTS peers (
    peer_id    TEXT PRIMARY KEY,
    addresses  TEXT NOT NULL,
    agent      TEXT,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS content (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    renditions  TEXT NOT NULL,
    segments    BIGINT NOT NULL,
    bytes       BIGINT NOT NULL,
    added       BIGINT NOT NULL
);
