"""The API-key administration endpoints.
"""
