// Makes a sweep folder of many trials from one finished sweep without running them: its
// first trial (metrics.json, samples.png hard-linked) copied TRIALS times, each with its own
// id, label, `sampler.steps_per_level` and fd, and its charts; `runner report` then builds
// the report a sweep of that many trials would get. The record is written as JSON, which
// is YAML too.
//
// Usage: node many.mjs SWEEP_FOLDER NEW_FOLDER TRIALS
import { cpSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [from, to, count] = process.argv.slice(2);
if (!from || !to || !count) {
  console.error("usage: node many.mjs SWEEP_FOLDER NEW_FOLDER TRIALS");
  process.exit(2);
}
const first = readdirSync(join(from, "trials")).filter((n) => !n.startsWith(".")).sort()[0];
const metrics = JSON.parse(readFileSync(join(from, "trials", first, "metrics.json"), "utf8"));
rmSync(to, { recursive: true, force: true });
mkdirSync(join(to, "trials"), { recursive: true });
cpSync(join(from, "plots"), join(to, "plots"), { recursive: true });
const trials = [];
for (let i = 0; i < Number(count); i++) {
  const label = `steps_per_level=${i}`;
  const id = `${label}-${i.toString(16).padStart(10, "0")}`;
  trials.push({ id, label, model: metrics.train_id, invocation: "1", config: { sampler: { steps_per_level: i } } });
  const dir = join(to, "trials", id);
  mkdirSync(dir);
  const copy = { ...metrics, trial: id, label, metrics: { ...metrics.metrics, fd: 1 + i / 7 } };
  writeFileSync(join(dir, "metrics.json"), JSON.stringify(copy));
  linkSync(join(from, "trials", first, "samples.png"), join(dir, "samples.png"));
}
writeFileSync(join(to, "experiment.yaml"), JSON.stringify({ source: `${from}, ${count} copies of ${first}`, trials }));
