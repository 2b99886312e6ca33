"""What users do with stored records: query, tail, traces, alerts, retention, health, patterns,
dashboards, keys. Each feature reaches data only through the engine's ``Store``.
"""
