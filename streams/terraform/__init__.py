"""Terraform: the `novacron` provider (run by Terraform in its own virtualenv) and its install.

Modules here import only the standard library, httpx and (the provider) the PyPI `tf` framework,
so the provider runs in a small virtualenv of its own (`novacron terraform install-provider`).
"""
