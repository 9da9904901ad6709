-- Stills of an upload for people choosing and scrubbing it: a poster (a blob's blake3) and a
-- seek-preview sprite (its blob and layout, JSON), carried to the video told of it.
ALTER TABLE uploads ADD COLUMN poster TEXT;
ALTER TABLE uploads ADD COLUMN preview TEXT;
ALTER TABLE videos ADD COLUMN poster TEXT;
ALTER TABLE videos ADD COLUMN preview TEXT;
