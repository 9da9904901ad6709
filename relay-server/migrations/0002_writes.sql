-- Signed writes: what each account's uploads and publications hold (its quota counts these),
-- the blobs they pinned (never evicted from the store), and the operator's deny list.
CREATE TABLE IF NOT EXISTS accounts (
    address TEXT PRIMARY KEY,
    used    BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS pins (
    hash    TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    bytes   BIGINT NOT NULL,
    added   BIGINT NOT NULL
);

-- part_of: the content id whose denial denied this blob (one of its segments), if any.
CREATE TABLE IF NOT EXISTS denied (
    id      TEXT PRIMARY KEY,
    reason  TEXT NOT NULL,
    part_of TEXT,
    added   BIGINT NOT NULL
);
