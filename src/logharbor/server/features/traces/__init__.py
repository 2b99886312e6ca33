"""One request across ALB → NGINX → app: lookup, timing breakdown, waterfall.
"""
