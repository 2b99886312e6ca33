"""Dashboards and saved queries.
"""
