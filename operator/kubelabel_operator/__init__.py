"""The kubelabel operator: Kopf handlers over pydantic models, pure builders and reconcilers."""

GROUP = "kubelabel.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
