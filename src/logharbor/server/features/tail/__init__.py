"""Live tail: the hub that fans new records out to subscribers, its feed and its filter.
"""
