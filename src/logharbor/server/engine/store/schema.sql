-- The logs table (DESIGN §3 "Store"). `{table}` is replaced by an identifier quoted with
-- logharbor.server.engine.store.sqlsafe.quote_identifier; `{engine}` by the store (MergeTree here,
-- ReplicatedMergeTree on a cluster). Nothing else is ever substituted into this text.
CREATE TABLE IF NOT EXISTS {table} (
    tenant             LowCardinality(String),
    timestamp          DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    observed_timestamp DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    -- a column without a codec is LZ4 (the engine's default), which left the numbers and the
    -- LowCardinality indexes below at twice the bytes of ZSTD(1) (9.5 against 5.1 bytes/record for
    -- the nine that hold data, 1M demo-mix records) for no less insert CPU (bench/README.md "Codecs";
    -- tenant and service, sorted first, take ~0 bytes either way); a table made without them gets
    -- them at start (store/migrations.py codec_migrations)
    level              LowCardinality(String) CODEC(ZSTD(1)),
    severity_number    UInt8 CODEC(ZSTD(1)),
    service            LowCardinality(String),
    source             LowCardinality(String) CODEC(ZSTD(1)),
    host               LowCardinality(String) CODEC(ZSTD(1)),
    instance           LowCardinality(String) CODEC(ZSTD(1)),
    env                LowCardinality(String) CODEC(ZSTD(1)),
    version            LowCardinality(String) CODEC(ZSTD(1)),
    message            String CODEC(ZSTD(3)),
    trace_id           String CODEC(ZSTD(1)),
    span_id            String CODEC(ZSTD(1)),
    request_id         String CODEC(ZSTD(1)),
    http_method        LowCardinality(String) CODEC(ZSTD(1)),
    http_path          String CODEC(ZSTD(3)),
    http_status        Nullable(UInt16) CODEC(ZSTD(1)),
    http_duration_ms   Nullable(Float64) CODEC(ZSTD(1)),
    http_client_ip     String CODEC(ZSTD(3)),
    http_user_agent    LowCardinality(String) CODEC(ZSTD(1)),
    http_bytes_sent    Nullable(UInt64) CODEC(ZSTD(1)),
    http_referer       String CODEC(ZSTD(3)),
    -- the attributes object's JSON text exactly as the encoder wrote it; '' when none
    -- (store/attributes.py: inserts read objects as strings, so nothing is altered). ZSTD(1), not
    -- (3): on these short, similar objects level 1 is smaller (24.1 against 25.6 bytes/record at
    -- 1M demo-mix records) at no more insert or merge CPU (bench/README.md "Query, three layouts")
    attributes         String CODEC(ZSTD(1)),
    pattern_id         LowCardinality(String) CODEC(ZSTD(1)),
    -- the deduplication token of the insert that stored the row: a verified insert counts its
    -- rows back by it (store/batches.py); queries never show it
    ingest_batch       LowCardinality(String) CODEC(ZSTD(1)),
    -- promoted attributes: the text form of a few top-level keys, parsed from the text once per
    -- row at insert (one JSONExtract into a named Tuple: 0.45 µs/row against 1.12 for one
    -- JSONExtract per column, 500k demo-mix rows; LowCardinality for the two low-cardinality keys:
    -- 1 B/row less, group-by as fast or faster), so a search or group-by reads a small column
    -- instead of parsing every row's attributes; the attr_<key> ALIAS columns are what queries name
    -- (store/attributes.py PROMOTED reads them from here; SELECT * leaves both kinds out)
    attr_promoted      Tuple(user_id Nullable(String), order_id Nullable(String), error_code LowCardinality(Nullable(String)), logger LowCardinality(Nullable(String)), duration_ms Nullable(String)) MATERIALIZED JSONExtract(attributes, 'Tuple(user_id Nullable(String), order_id Nullable(String), error_code LowCardinality(Nullable(String)), logger LowCardinality(Nullable(String)), duration_ms Nullable(String))') CODEC(ZSTD(1)),
    attr_user_id       Nullable(String) ALIAS attr_promoted.user_id,
    attr_order_id      Nullable(String) ALIAS attr_promoted.order_id,
    attr_error_code    LowCardinality(Nullable(String)) ALIAS attr_promoted.error_code,
    attr_logger        LowCardinality(Nullable(String)) ALIAS attr_promoted.logger,
    attr_duration_ms   Nullable(String) ALIAS attr_promoted.duration_ms,
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_request_id request_id TYPE bloom_filter(0.001) GRANULARITY 1,
    -- words match in any case: the index holds the lowercased message (query/filters.py)
    INDEX idx_message_lower lowerUTF8(message) TYPE text(tokenizer = splitByNonAlpha),
    -- each granule's time range (rows are ordered by service first, so a granule spans a short
    -- stretch of one service's time): a search's ORDER BY timestamp DESC LIMIT n skips granules
    -- older than the n-th row found so far without reading them (the engine's top-k filter;
    -- rare word at 10M: 133 → 63 ms of CPU, bench/README.md "Query"; store/migrations.py)
    INDEX idx_timestamp timestamp TYPE minmax GRANULARITY 1,
    INDEX idx_http_status http_status TYPE minmax GRANULARITY 1,
    INDEX idx_http_duration http_duration_ms TYPE minmax GRANULARITY 1,
    INDEX idx_pattern_id pattern_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_user_id attr_promoted.user_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_order_id attr_promoted.order_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_duration_ms toFloat64OrNull(attr_promoted.duration_ms) TYPE minmax GRANULARITY 1
)
ENGINE = {engine}
PARTITION BY toDate(timestamp)
ORDER BY (tenant, service, timestamp)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192
