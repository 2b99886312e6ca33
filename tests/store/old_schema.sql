-- The logs table (DESIGN §3 "Store"). `{table}` is replaced by an identifier quoted with
-- logharbor.server.engine.store.sqlsafe.quote_identifier; `{engine}` by the store (MergeTree here,
-- ReplicatedMergeTree on a cluster). Nothing else is ever substituted into this text.
CREATE TABLE IF NOT EXISTS {table} (
    tenant             LowCardinality(String),
    timestamp          DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    observed_timestamp DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    level              LowCardinality(String),
    severity_number    UInt8,
    service            LowCardinality(String),
    source             LowCardinality(String),
    host               LowCardinality(String),
    instance           LowCardinality(String),
    env                LowCardinality(String),
    version            LowCardinality(String),
    message            String CODEC(ZSTD(3)),
    trace_id           String CODEC(ZSTD(1)),
    span_id            String CODEC(ZSTD(1)),
    request_id         String CODEC(ZSTD(1)),
    http_method        LowCardinality(String),
    http_path          String CODEC(ZSTD(3)),
    http_status        Nullable(UInt16),
    http_duration_ms   Nullable(Float64),
    http_client_ip     String CODEC(ZSTD(3)),
    http_user_agent    LowCardinality(String),
    http_bytes_sent    Nullable(UInt64),
    http_referer       String CODEC(ZSTD(3)),
    attributes         JSON CODEC(ZSTD(3)),
    -- '' for most rows; else the attributes the JSON column would alter, exactly (store/attributes.py)
    attributes_exact   String CODEC(ZSTD(3)),
    pattern_id         LowCardinality(String),
    -- the deduplication token of the insert that stored the row: a verified insert counts its
    -- rows back by it (store/batches.py); queries never show it
    ingest_batch       LowCardinality(String) CODEC(ZSTD(1)),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_request_id request_id TYPE bloom_filter(0.001) GRANULARITY 1,
    -- words match in any case: the index holds the lowercased message (query/filters.py)
    INDEX idx_message_lower lowerUTF8(message) TYPE text(tokenizer = splitByNonAlpha),
    INDEX idx_http_status http_status TYPE minmax GRANULARITY 1,
    INDEX idx_http_duration http_duration_ms TYPE minmax GRANULARITY 1,
    INDEX idx_pattern_id pattern_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = {engine}
PARTITION BY toDate(timestamp)
ORDER BY (tenant, service, timestamp)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192
