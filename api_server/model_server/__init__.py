"""The bundled ML backend: a small text classifier speaking Label Studio's ML backend protocol.

Self-contained on purpose (it runs as its own Deployment): it parses the labeling config
itself and never imports the API server's domain packages.
"""
