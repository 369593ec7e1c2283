"""Rego policies and compliance controls, and the engine that evaluates them (regopy)."""
