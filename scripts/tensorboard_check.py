"""Reads a sweep's TensorBoard logs with TensorBoard's own event reader and checks the
HParams plugin data: one experiment summary listing the swept keys and the metric tags, and
per trial a session with its swept values, its group and a success status, beside the
metric scalars the experiment names.

Usage: python tensorboard_check.py RESULTS_DIR   (a sweep's folder, holding tb/ and metrics.csv)
"""
import csv
import sys
from pathlib import Path

from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

root = Path(sys.argv[1])
multiplexer = plugin_event_multiplexer.EventMultiplexer()
multiplexer.AddRunsFromDirectory(str(root / "tb"))
multiplexer.Reload()
content = multiplexer.PluginRunToTagToContent("hparams")
failures = []

experiments = [
    plugin_data_pb2.HParamsPluginData.FromString(tags["_hparams_/experiment"]).experiment
    for tags in content.values()
    if "_hparams_/experiment" in tags
]
if len(experiments) != 1:
    failures.append(f"expected one experiment summary, found {len(experiments)}")
    experiment = api_pb2.Experiment()
else:
    experiment = experiments[0]
swept = [h.name for h in experiment.hparam_infos]
metric_tags = {m.name.tag for m in experiment.metric_infos}

with open(root / "metrics.csv", newline="") as f:
    rows = list(csv.DictReader(f))
sessions = {run: tags for run, tags in content.items() if "_hparams_/session_start_info" in tags}
if len(sessions) != len(rows):
    failures.append(f"{len(sessions)} sessions for {len(rows)} trials")
for row in rows:
    run = row["trial"]
    tags = sessions.get(run)
    if tags is None:
        failures.append(f"no session for trial {run}")
        continue
    start = plugin_data_pb2.HParamsPluginData.FromString(tags["_hparams_/session_start_info"]).session_start_info
    end = plugin_data_pb2.HParamsPluginData.FromString(tags["_hparams_/session_end_info"]).session_end_info
    if sorted(start.hparams.keys()) != sorted(swept):
        failures.append(f"{run}: session keys {sorted(start.hparams.keys())} vs swept {sorted(swept)}")
    for key, value in start.hparams.items():
        column = key if key in row else None
        if column is not None:
            kind = value.WhichOneof("kind")
            shown = value.number_value if kind == "number_value" else getattr(value, kind)
            if kind == "number_value" and abs(float(row[column]) - shown) > 1e-9 * max(1.0, abs(shown)):
                failures.append(f"{run}: {key} = {shown} in the session, {row[column]} in metrics.csv")
    if end.status != api_pb2.STATUS_SUCCESS:
        failures.append(f"{run}: session status {end.status}")
    scalars = set(multiplexer.GetAccumulator(run).Tags()["tensors"]) | set(
        multiplexer.GetAccumulator(run).Tags().get("scalars", [])
    )
    missing = [t for t in metric_tags if t not in scalars]
    if missing:
        failures.append(f"{run}: no scalars for {missing}")

print(f"tensorboard check: {len(experiments)} experiment, {len(sessions)} sessions, "
      f"hparams {swept}, {len(metric_tags)} metric tags")
if failures:
    print("tensorboard check FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
    sys.exit(1)
print("tensorboard check: 1 passed, 0 failed")
