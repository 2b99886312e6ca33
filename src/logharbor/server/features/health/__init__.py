"""Service health: per-service rates and errors, and recorded rules.
"""
