"""Reads a sweep folder's TensorBoard logs with TensorBoard's own event reader and checks
the HParams plugin data against the folder's table: one experiment summary whose hparams
are the table's swept columns; per trial one session with its values (equal to the table's),
its group (its configuration without the seed: one per configuration, so configurations of
different invocations never merge) and its status — SUCCESS with the metric scalars the
experiment names, or FAILURE with its cause as the text summary `failure`.

Usage: python tensorboard_check.py RESULTS_DIR   (a sweep's folder, holding tb/ and metrics.csv)
"""
import csv
import sys
from pathlib import Path

from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.util import tensor_util

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
missing_columns = [key for key in swept if rows and key not in rows[0]]
if missing_columns:
    failures.append(f"hparams {missing_columns} are not columns of metrics.csv")
sessions = {run: tags for run, tags in content.items() if "_hparams_/session_start_info" in tags}
if len(sessions) != len(rows):
    failures.append(f"{len(sessions)} sessions for {len(rows)} trials")


def configuration(row):
    return tuple((key, row.get(key, "")) for key in swept if key != "seed")


groups = {}
failed = 0
for row in rows:
    run = row["trial"]
    tags = sessions.get(run)
    if tags is None:
        failures.append(f"no session for trial {run}")
        continue
    start = plugin_data_pb2.HParamsPluginData.FromString(tags["_hparams_/session_start_info"]).session_start_info
    end = plugin_data_pb2.HParamsPluginData.FromString(tags["_hparams_/session_end_info"]).session_end_info
    if sorted(start.hparams.keys()) != sorted(swept):
        failures.append(f"{run}: session keys {sorted(start.hparams.keys())} vs hparams {sorted(swept)}")
    for key, value in start.hparams.items():
        kind = value.WhichOneof("kind")
        shown = getattr(value, kind)
        cell = row.get(key, "")
        if kind == "number_value":
            if abs(float(cell) - shown) > 1e-9 * max(1.0, abs(shown)):
                failures.append(f"{run}: {key} = {shown} in the session, {cell} in metrics.csv")
        elif kind == "bool_value":
            if cell.lower() != str(shown).lower():
                failures.append(f"{run}: {key} = {shown} in the session, {cell} in metrics.csv")
        elif cell != shown:
            failures.append(f"{run}: {key} = {shown!r} in the session, {cell!r} in metrics.csv")
    groups.setdefault(start.group_name, set()).add(configuration(row))
    accumulator = multiplexer.GetAccumulator(run)
    scalars = set(accumulator.Tags()["tensors"]) | set(accumulator.Tags().get("scalars", []))
    if row["status"] == "failed":
        failed += 1
        if end.status != api_pb2.STATUS_FAILURE:
            failures.append(f"{run}: failed trial with session status {end.status}")
        texts = multiplexer.PluginRunToTagToContent("text").get(run, {})
        if "failure" not in texts:
            failures.append(f"{run}: failed trial without its cause (text summary `failure`)")
        else:
            cause = tensor_util.make_ndarray(accumulator.Tensors("failure")[-1].tensor_proto)
            cause = cause.item().decode() if hasattr(cause, "item") else str(cause)
            if cause != row["message"]:
                failures.append(f"{run}: cause {cause!r} vs message {row['message']!r}")
    else:
        if end.status != api_pb2.STATUS_SUCCESS:
            failures.append(f"{run}: session status {end.status}")
        missing = [t for t in metric_tags if t not in scalars and t.split("/")[-1] in row and row[t.split("/")[-1]] != ""]
        if missing:
            failures.append(f"{run}: no scalars for {missing}")

merged = {g: c for g, c in groups.items() if len(c) > 1}
if merged:
    failures.append(f"sessions of different configurations share a group: {merged}")
configurations = {configuration(row) for row in rows}
if len(groups) != len(configurations):
    failures.append(f"{len(groups)} session groups for {len(configurations)} configurations")

print(f"tensorboard check: {len(experiments)} experiment, {len(sessions)} sessions "
      f"({failed} failed), {len(groups)} configurations, hparams {swept}, "
      f"{len(metric_tags)} metric tags")
if failures:
    print("tensorboard check FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
    sys.exit(1)
print("tensorboard check: 1 passed, 0 failed")
