-- The ingest form of one `stage` call: every physical line of the file (gzip undone, a UTF-8 BOM dropped, CR-only
-- line endings read as LF, split at LF with the CR of a CRLF removed, by the engine's Python side) loaded by binary
-- COPY as `bytea` with its number, so NUL bytes and invalid UTF-8 arrive unchanged and are judged here.
-- Every working table of the call is temporary: private to its connection, dropped at commit.

-- The plans run once: compiling their many expressions to machine code would cost more than it saves.
SET LOCAL jit = off;

CREATE TEMPORARY TABLE line (
    n integer NOT NULL,  -- physical line number, 1-based (the header is line 1)
    raw bytea NOT NULL
) ON COMMIT DROP;
