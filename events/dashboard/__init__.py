"""The operators' live dashboard at /dashboard/ (staff only): event types and their publish
rates, subscriptions and their lag, sessions, closes and dead letters, and the health of
Redis, the database and the workers. Pages are Django templates; a little JavaScript of our
own (events/static/dashboard/) polls this package's JSON views every second.
"""
