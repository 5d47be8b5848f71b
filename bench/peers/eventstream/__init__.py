"""THE PEER, not Streamsite: a minimal Django project serving django-eventstream (with its
Redis option, EVENTSTREAM_REDIS) under Daphne, for `python -m bench fanout`.

It runs only in var/bench-peer-venv (bench/peer.py creates it from requirements.txt) and
imports nothing of Streamsite. Readers: GET /events/ (channel "bench"); publishing:
POST /publish with a JSON object, sent as `send_event("bench", "message", data)`.
"""
