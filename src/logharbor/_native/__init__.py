"""The compiled copy of the record path (built by scripts/build_native.py; see
logharbor.server.ingest.decoder). Only this file is in git: the modules are built per machine."""
