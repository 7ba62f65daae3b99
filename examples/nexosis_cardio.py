"""The Nexosis anomaly quick start, redone with ad_pipeline on the cardio data set.

Nexosis: upload cardio, start a "session" (``predictionDomain: anomalies``), read the anomalous rows
with their ``anomaly`` score (negative = anomalous) and ``percentAnomalies``, then POST new rows to the
kept model. Here: a pandas frame, ``df.anomaly.fit_outliers`` / ``score_outliers``, ``model.save`` /
``TabularDetector.load``. The ``target`` column is ignored (only used at the end to grade the scores);
``key`` is kept to match rows.

Run: python examples/nexosis_cardio.py [path/to/cardio.csv]
     (default: ../shared/tabular/cardio.csv relative to the repository root, or $AD_PIPELINE_CARDIO)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import ad_pipeline as ad  # registers df.anomaly

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = Path(os.environ.get("AD_PIPELINE_CARDIO", ROOT.parent / "shared" / "tabular" / "cardio.csv"))

# the row the quick start sends to /models/{modelId}/predict (Nexosis answered anomaly -0.1019)
NEW_ROW = {
    "X.1": -1.15907509242824, "X.2": -0.91998843744384, "X.3": -0.178808273342188, "X.4": 0.0119005653086114,
    "X.5": 3.14482390535516, "X.6": 17.314053637174, "X.7": -0.278294946006147, "X.8": 1.28100338235996,
    "X.9": 0.759072460103087, "X.10": -0.420487347915062, "X.11": -1.39808792464813, "X.12": 0.744634905731968,
    "X.13": -1.26165666571131, "X.14": -0.400329665815939, "X.15": 0.278624569020388, "X.16": 0.963082541396573,
    "X.17": -4.14708829524105, "X.18": -3.19083518334924, "X.19": -3.21686477340904, "X.20": 2.58264294083969,
    "X.21": -2.12660546680886, "key": "1780",
}


def main(path: Path = DEFAULT) -> None:
    # Step 1: the data set (key kept as text, as in cardio.json)
    df = pd.read_csv(path, dtype={"key": str})
    print(f"cardio: {len(df)} rows, columns {list(df.columns[:3])} ... {list(df.columns[-2:])}")

    # Step 2: the "session" -- fit on every numeric column except key and target
    model = df.anomaly.fit_outliers(key="key", ignore=["target"])
    print(f"model: {model!r}")
    print(f"metrics: percentAnomalies = {model.percent_anomalies_:.4f}")

    # Step 3: the anomalous rows with their score (more negative = more anomalous) and why
    scored = df.anomaly.score_outliers(model)
    anomalies = scored[scored["is_anomaly"]].sort_values("anomaly")
    print(f"{len(anomalies)} anomalous rows; the five most anomalous:")
    for _, row in anomalies.head(5).iterrows():
        why = ", ".join(f"{t['feature']} ({t['contribution']:+.3f})" for t in row["anomaly_top_features"])
        print(f"  key {row['key']:>5}  anomaly {row['anomaly']:+.4f}  top features: {why}")

    # Step 4: keep the model (the modelId) and predict new rows with it
    with tempfile.TemporaryDirectory() as tmp:
        model_file = Path(tmp) / "cardio_model.npz"
        model.save(model_file)
        kept = ad.TabularDetector.load(model_file)
        new = pd.DataFrame([NEW_ROW])
        predicted = new.anomaly.score_outliers(kept)
        row = predicted.iloc[0]
        print(f"predict key {row['key']}: anomaly {row['anomaly']:+.4f} (is_anomaly={bool(row['is_anomaly'])}), "
              f"top feature {row['anomaly_top_features'][0]['feature']}")

    # Not part of the quick start: grade the unsupervised scores with the held-back labels
    y = df["target"].to_numpy()
    s = -scored["anomaly"].to_numpy()
    ranks = pd.Series(s).rank().to_numpy()
    auc = (ranks[y == 1].sum() - (y == 1).sum() * ((y == 1).sum() + 1) / 2) / ((y == 1).sum() * (y == 0).sum())
    flagged = scored["is_anomaly"].to_numpy()
    print(f"against target: ROC-AUC {auc:.3f}; {int((flagged & (y == 1)).sum())} of {int(flagged.sum())} flagged "
          f"rows are labelled anomalies ({int(y.sum())} labelled in all)")
    assert np.isfinite(auc)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
