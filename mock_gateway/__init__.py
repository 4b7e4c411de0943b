"""A stand-in for a third-party email gateway, for demos and tests.

It serves the gateway API of docs/architecture.md, responds to each send with
a status code drawn from configured weights, and keeps accepted messages in
memory for inspection. Start it with `python -m mock_gateway`.
"""
