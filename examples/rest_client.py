"""Call the Azure-compatible REST service the way Azure clients did (requests, then the Azure SDK).

Start a server first (in another terminal)::

    AD_PIPELINE_API_KEYS=my-local-key ad-pipeline serve --port 8080

then run::

    python examples/rest_client.py [--endpoint http://127.0.0.1:8080] [--key my-local-key]

With ``--self-serve`` the script starts a server itself (on a free port) and stops it at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator

import requests

# Azure's documentation example: monthly values, 1972-01 .. 1975-12 (1974-02 is the spike)
VALUES = [826, 799, 890, 900, 961, 935, 894, 855, 809, 810, 766, 805, 821, 773, 883, 898, 957, 924, 881, 837,
          784, 791, 760, 802, 828, 1030, 889, 902, 969, 947, 908, 867, 815, 812, 773, 813, 834, 782, 892, 903,
          966, 937, 896, 858, 817, 827, 797, 843]  # fmt: skip
REQUEST = {
    "series": [{"timestamp": f"{1972 + i // 12}-{i % 12 + 1:02d}-01T00:00:00Z", "value": v} for i, v in enumerate(VALUES)],
    "granularity": "monthly",
    "maxAnomalyRatio": 0.25,
    "sensitivity": 95,
}


def with_requests(endpoint: str, key: str) -> None:
    """The quick-start way: a JSON body and the subscription-key header."""
    headers = {"Content-Type": "application/json", "Ocp-Apim-Subscription-Key": key}
    entire = requests.post(endpoint + "/anomalydetector/v1.1/timeseries/entire/detect",
                           data=json.dumps(REQUEST), headers=headers, timeout=60)  # fmt: skip
    entire.raise_for_status()
    flagged = [REQUEST["series"][i]["timestamp"][:7] for i, a in enumerate(entire.json()["isAnomaly"]) if a]
    print(f"requests  entire: period {entire.json()['period']}, anomalies at {flagged}")

    last = requests.post(endpoint + "/anomalydetector/v1.1/timeseries/last/detect",
                         data=json.dumps(REQUEST), headers=headers, timeout=60).json()  # fmt: skip
    print(f"requests  last:   isAnomaly {last['isAnomaly']}, expected {last['expectedValue']:.1f} "
          f"± {last['upperMargin']:.1f}, suggestedWindow {last['suggestedWindow']}")  # fmt: skip

    bad = requests.post(endpoint + "/anomalydetector/v1.1/timeseries/last/detect",
                        data=json.dumps({**REQUEST, "sensitivity": 120}), headers=headers, timeout=60)  # fmt: skip
    print(f"requests  refusal: HTTP {bad.status_code} {bad.json()}")


def with_sdk(endpoint: str, key: str) -> None:
    """Microsoft's azure-ai-anomalydetector SDK, unchanged but for endpoint and key."""
    try:
        from azure.ai.anomalydetector import AnomalyDetectorClient
        from azure.ai.anomalydetector.models import (
            TimeGranularity,
            TimeSeriesPoint,
            UnivariateDetectionOptions,
        )
        from azure.core.credentials import AzureKeyCredential
    except ImportError:
        print("sdk       skipped (pip install azure-ai-anomalydetector==3.0.0b6)")
        return
    client = AnomalyDetectorClient(endpoint=endpoint, credential=AzureKeyCredential(key))
    options = UnivariateDetectionOptions(
        series=[TimeSeriesPoint(timestamp=p["timestamp"], value=p["value"]) for p in REQUEST["series"]],
        granularity=TimeGranularity.MONTHLY, sensitivity=95, max_anomaly_ratio=0.25,
    )  # fmt: skip
    result = client.detect_univariate_last_point(options)
    print(f"sdk       last:   isAnomaly {result.is_anomaly}, expected {result.expected_value:.1f}, period {result.period}")


@contextlib.contextmanager
def local_server(key: str) -> Iterator[str]:
    """An in-process uvicorn server on a free loopback port."""
    import uvicorn

    from ad_pipeline.rest import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(keys={key}), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", default="http://127.0.0.1:8080")
    p.add_argument("--key", default="my-local-key")
    p.add_argument("--self-serve", action="store_true", help="start a server in this process")
    args = p.parse_args()
    with local_server(args.key) if args.self_serve else contextlib.nullcontext(args.endpoint) as endpoint:
        with_requests(endpoint, args.key)
        with_sdk(endpoint, args.key)


if __name__ == "__main__":
    main()
