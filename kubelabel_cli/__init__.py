"""The `kubelabel` command line, beside the parts it composes: the API server (`api_server`),
the operator (`kubelabel_operator`) and the bundled model server (`kubelabel_model_server`),
none of which imports another's internals (see docs/architecture.md).
"""
