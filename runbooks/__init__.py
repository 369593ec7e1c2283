"""Runbooks and workflows: the DAG engine, step types and the YAML runbook library."""
