"""Pattern upkeep: backfill and journal of the templates mined at ingest.
"""
