"""The engine: write-ahead log, batcher, pattern mining and the store — where records are kept.

Nothing here imports a feature, an ingest protocol or the app: features reach data only
through ``engine.store.Store``.
"""
