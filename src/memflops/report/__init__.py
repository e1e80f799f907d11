"""The report data model and its renderers."""
