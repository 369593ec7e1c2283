"""The `novacron` command line."""
