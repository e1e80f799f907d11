"""The JSON schema module (report.schema)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import memflops


def test_schema_imports_no_report_model_at_run_time() -> None:
    """report/model.py imports report/schema.py; an import back would be a cycle."""
    code = (
        "import sys, memflops.report.schema\n"
        "assert 'memflops.report.model' not in sys.modules, 'schema imported model'\n"
        "import memflops.report.model\n"
    )
    src = str(Path(memflops.__file__).parents[1])  # the copy of memflops under test
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": src})
