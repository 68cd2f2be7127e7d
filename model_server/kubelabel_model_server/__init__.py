"""The bundled ML backend: a small text classifier speaking Label Studio's ML backend protocol.

Self-contained on purpose (it runs as its own Deployment): it parses the labeling config
itself and imports nothing of the API server but the outbound-address policy
(`api_server.common.egress`, itself self-contained); `.importlinter` checks both.
"""
