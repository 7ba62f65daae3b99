"""Azure's own 2019 quick starts (``../shared/seeds/`` 000 batch, 002 last point) run against a real
server with only the endpoint, the key and the data changed, and print Azure's PascalCase fields.

The Python code is taken from the seed documents as published (every ```python block, in order);
the placeholders are replaced by string substitution, each of which must match exactly once.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ad_pipeline as ad
from ad_pipeline.rest import preview_body
from ad_pipeline.rest.request import parse_request

from ..support.rest_server import KEY, azure_example_request

SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"


def seed_code(prefix: str) -> str:
    paths = sorted(SEEDS.glob(f"{prefix}_*.txt"))
    if not paths:
        pytest.skip(f"seed {prefix} not found in {SEEDS}")
    blocks = re.findall(r"^( *)```python\n(.*?)^\1```", paths[0].read_text(), flags=re.M | re.S)
    assert blocks, f"no python code in {paths[0].name}"
    return "\n".join(textwrap.dedent(code) for _, code in blocks)


def replace_once(code: str, old: str, new: str) -> str:
    assert code.count(old) == 1, f"{old!r} occurs {code.count(old)} times in the quick start"
    return code.replace(old, new)


def run(code: str, tmp_path: Path) -> str:
    script = tmp_path / "quickstart.py"
    script.write_text(code)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "request-data.json"
    path.write_text(json.dumps(azure_example_request()))
    return path


def engine_answer(kind: str, path: Path) -> dict:
    values, stamps, kwargs = parse_request(json.loads(path.read_text()))
    detect = ad.detect_entire if kind == "entire" else ad.detect_last
    return preview_body(detect(values, stamps, **kwargs).to_dict())


def test_batch_quick_start_000(live_url: str, data_file: Path, tmp_path: Path) -> None:
    code = seed_code("000")
    code = replace_once(code, '"[YOUR_ENDPOINT_URL]"', repr(live_url + "/"))
    code = replace_once(code, '"[YOUR_SUBSCRIPTION_KEY]"', repr(KEY))
    code = replace_once(code, '"[PATH_TO_TIME_SERIES_DATA]"', repr(str(data_file)))
    out = run(code, tmp_path)
    printed, _, positions = out.partition("Anomalies found in the following data positions:")
    result = json.loads(printed)
    assert set(result) == {"Period", "ExpectedValues", "UpperMargins", "LowerMargins", "IsAnomaly",
                           "IsNegativeAnomaly", "IsPositiveAnomaly"}
    assert result == engine_answer("entire", data_file)
    flagged = [int(x) for x in positions.split()]
    assert flagged == [i for i, a in enumerate(result["IsAnomaly"]) if a]
    assert flagged == [25]  # Azure's documented answer for this series: 1974-02 (1030) only


def test_last_point_quick_start_002(live_url: str, data_file: Path, tmp_path: Path) -> None:
    code = seed_code("002")
    code = replace_once(code, "https://[REPLACE_WITH_ENDPOINT]", live_url)
    code = replace_once(code, '"[YOUR_SUBSCRIPTION_KEY]"', repr(KEY))
    code = replace_once(code, '"[REPLACE_WITH_THE_EXAMPLE_OR_YOUR_OWN_DATA_POINTS]"',
                        f"json.load(open({str(data_file)!r}))")
    result = ast.literal_eval(run(code, tmp_path).strip())
    assert set(result) == {"Period", "SuggestedWindow", "ExpectedValue", "UpperMargin", "LowerMargin",
                           "IsAnomaly", "IsNegativeAnomaly", "IsPositiveAnomaly"}
    assert result == engine_answer("last", data_file)
    # Azure's documented answer for this series: not anomalous, period 12, window 4 * 12 + 1
    assert (result["IsAnomaly"], result["Period"], result["SuggestedWindow"]) == (False, 12, 49)
