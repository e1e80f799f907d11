"""The name and version of the advice's JSON schema (docs/advice.md describes it)."""

SCHEMA = "memflops.advice/1"
