"""Nothing in an analysis reaches the network unless the user named a hub repository:
configs that name a hub model inside them (UperNet's, DPT's `backbone`) are refused in
one line, with no name looked up and no socket opened (`memflops.zoo.hf.offline`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")

from memflops.zoo.hf.offline import offline

ROOT = Path(__file__).resolve().parents[3]
GUARD = ROOT / "tests" / "fixtures" / "no_network"


@pytest.mark.parametrize(
    "config",
    [
        {"model_type": "upernet", "backbone": "openmmlab/upernet-convnext-small",
         "use_pretrained_backbone": False, "backbone_config": None},
        {"model_type": "dpt", "backbone": "facebook/dinov2-small",
         "use_pretrained_backbone": False, "backbone_config": None},
    ],
)
def test_a_backbone_on_the_hub_opens_no_socket(tmp_path: Path, config: dict[str, object]) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    log = tmp_path / "network.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(GUARD), str(ROOT / "src")]),
               MEMFLOPS_SRC=str(ROOT / "src"), MEMFLOPS_SOCKET_LOG=str(log))
    env.pop("HF_HUB_OFFLINE", None)
    done = subprocess.run(
        [sys.executable, "-c", "from memflops.cli import run; run()", "analyze", f"hf:{path}"],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )
    assert not log.exists(), log.read_text()
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and f"its backbone {config['backbone']!r} is a Hub model" in lines[0]


def test_offline_is_restored() -> None:
    import huggingface_hub.constants as constants

    before = (os.environ.get("HF_HUB_OFFLINE"), constants.HF_HUB_OFFLINE)
    with offline():
        assert os.environ["HF_HUB_OFFLINE"] == "1" and constants.HF_HUB_OFFLINE is True
    assert (os.environ.get("HF_HUB_OFFLINE"), constants.HF_HUB_OFFLINE) == before
