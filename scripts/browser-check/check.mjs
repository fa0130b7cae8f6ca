// Opens a sweep's report.html in headless Chromium and checks what a reader would see: no
// console errors or page errors, one summary row per trial and one row per configuration,
// every image decoded, sorting by a column works, and every chart readable (charts.mjs: no
// title running off a picture, no text of a chart's SVG overlapping other text or leaving
// the picture); writes a full-page screenshot.
//
// Usage: node check.mjs REPORT.html SCREENSHOT.png TRIALS CONFIGURATIONS
import { chromium } from "playwright-core";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { checkCharts } from "./charts.mjs";

const [report, screenshot, trials, configurations] = process.argv.slice(2);
if (!report || !screenshot || !trials || !configurations) {
  console.error("usage: node check.mjs REPORT.html SCREENSHOT.png TRIALS CONFIGURATIONS");
  process.exit(2);
}
const failures = [];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("request", (r) => { if (!r.url().startsWith("file:") && !r.url().startsWith("data:")) problems.push(`network request: ${r.url()}`); });
  await page.goto(pathToFileURL(report).href, { waitUntil: "load" });

  const rows = await page.locator("#summary tbody tr").count();
  if (rows !== Number(trials)) failures.push(`summary has ${rows} rows, expected ${trials}`);
  const configs = await page.locator("#configurations tbody tr").count();
  if (configs !== Number(configurations)) failures.push(`configurations table has ${configs} rows, expected ${configurations}`);

  const images = await page.$$eval("img", (all) => all.map((i) => ({ alt: i.alt, ok: i.complete && i.naturalWidth > 0 })));
  if (images.length === 0) failures.push("no images");
  for (const image of images) if (!image.ok) failures.push(`image not decoded: ${image.alt}`);

  // Sorting: clicking the first metric column orders the summary by it (ascending, then descending).
  const column = await page.$$eval("#summary thead th", (heads) => heads.findIndex((h) => h.textContent === "fd"));
  if (column < 0) {
    failures.push("no fd column in the summary");
  } else {
    const values = () => page.$$eval(`#summary tbody tr td:nth-child(${column + 1})`, (cells) => cells.map((c) => parseFloat(c.dataset.value)));
    await page.click(`#summary thead th:nth-child(${column + 1})`);
    const up = await values();
    await page.click(`#summary thead th:nth-child(${column + 1})`);
    const down = await values();
    const sorted = (v, sign) => v.every((x, i) => i === 0 || sign * (x - v[i - 1]) >= 0);
    if (!sorted(up, 1) || !sorted(down, -1)) failures.push(`sorting by fd failed: ${up} / ${down}`);
  }
  await page.screenshot({ path: screenshot, fullPage: true });
  failures.push(...problems);
  failures.push(...(await checkCharts(browser, page, join(dirname(report), "plots"))));
  console.log(`report check: ${rows} trial rows, ${configs} configurations, ${images.length} images, screenshot ${screenshot}`);
} finally {
  await browser.close();
}
if (failures.length > 0) {
  console.error(`report check FAILED:\n  ${failures.join("\n  ")}`);
  process.exit(1);
}
console.log("report check: 1 passed, 0 failed");
