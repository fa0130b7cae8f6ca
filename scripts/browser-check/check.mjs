// Opens a sweep's report.html in headless Chromium and checks what a reader would see: no
// console errors or page errors, one summary row per trial and one row per configuration
// (a paged table shows 50 at a time and pages through the rest), every image decoded (the
// embedded ones and those linked beside the report), sorting by a column works across
// pages, a trial's label opens its section (on its page), and every chart readable
// (charts.mjs: no title running off a picture, no text of a chart's SVG overlapping other
// text or leaving the picture); writes a screenshot of the first page of each table.
//
// Usage: node check.mjs REPORT.html SCREENSHOT.png TRIALS CONFIGURATIONS
import { chromium } from "playwright-core";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { checkCharts, inspectPictures } from "./charts.mjs";

const [report, screenshot, trials, configurations] = process.argv.slice(2);
if (!report || !screenshot || !trials || !configurations) {
  console.error("usage: node check.mjs REPORT.html SCREENSHOT.png TRIALS CONFIGURATIONS");
  process.exit(2);
}
const failures = [];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  // Linked pictures are files beside the report: reading their pixels (charts.mjs) needs
  // file pages to share an origin.
  args: ["--no-sandbox", "--allow-file-access-from-files"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("request", (r) => { if (!r.url().startsWith("file:") && !r.url().startsWith("data:")) problems.push(`network request: ${r.url()}`); });
  const start = Date.now();
  await page.goto(pathToFileURL(report).href, { waitUntil: "load" });
  const loaded = Date.now() - start;
  const elements = await page.evaluate(() => document.getElementsByTagName("*").length);

  // A paged table holds all its rows in its pager (body.pager) and shows one page of them.
  const count = (table) => page.evaluate((selector) => {
    const body = document.querySelector(`${selector} tbody`);
    if (!body) return 0;
    return body.pager ? body.pager.items().length : body.rows.length;
  }, table);
  const visible = () => page.locator("#summary tbody tr").count();
  const rows = await count("#summary table");
  if (rows !== Number(trials)) failures.push(`summary has ${rows} rows, expected ${trials}`);
  const configs = await count("#configurations table");
  if (configs !== Number(configurations)) failures.push(`configurations table has ${configs} rows, expected ${configurations}`);
  const first = await visible();
  if (first !== Math.min(rows, 50)) failures.push(`the summary's first page shows ${first} rows of ${rows}`);
  if (rows > 50) {
    await page.click("#summary nav.pager button:text('next ›')");
    const second = await visible();
    if (second !== Math.min(rows - 50, 50)) failures.push(`the summary's second page shows ${second} rows of ${rows}`);
    await page.click("#summary nav.pager button:text('« first')");
  }

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
    if (rows > 50) {
      // Sorting orders every row, not the page: the next page goes on from the first.
      await page.click("#summary nav.pager button:text('next ›')");
      const rest = await values();
      if (!sorted(down.concat(rest), -1)) failures.push(`sorting by fd did not order the pages: ${down} / ${rest}`);
      await page.click("#summary nav.pager button:text('« first')");
    }
  }
  // A trial's label opens its section, turning the trials' pager to its page when needed.
  const link = page.locator("#summary tbody tr:first-child td:first-child a");
  const target = (await link.getAttribute("href")).slice(1);
  await link.click();
  const opened = await page.evaluate((id) => {
    const section = document.getElementById(id);
    if (!section) return false;
    const box = section.getBoundingClientRect();
    return box.top >= -1 && box.top < window.innerHeight;
  }, target);
  if (!opened) failures.push(`the summary's link to #${target} does not show it`);
  await page.screenshot({ path: screenshot, fullPage: true });

  // Every picture, as a reader pages through them: those outside paged lists, then every
  // page of each paged list that holds pictures; each loaded, decoded, its title inside it.
  const pictures = await inspectPictures(page, null);
  const pagers = await page.locator("nav.pager").count();
  for (let n = 0; n < pagers; n++) {
    const nav = page.locator("nav.pager").nth(n);
    if (!(await nav.evaluate((p) => p.nextElementSibling.querySelector("img") !== null))) continue;
    const first = nav.locator("button:text('« first')");
    if (await first.isEnabled()) await first.click();
    pictures.push(...(await inspectPictures(page, n)));
    const next = nav.locator("button:text('next ›')");
    while (await next.isEnabled()) {
      await next.click();
      pictures.push(...(await inspectPictures(page, n)));
    }
  }
  if (pictures.length === 0) failures.push("no images");
  for (const p of pictures) if (!p.ok) failures.push(`image not decoded: ${p.alt}`);
  for (const p of pictures) if (p.clipped) failures.push(`title runs off the picture: ${p.alt}`);
  failures.push(...problems);
  failures.push(...(await checkCharts(browser, join(dirname(report), "plots"))));
  console.log(`report check: ${rows} trial rows, ${configs} configurations, ${pictures.length} pictures, loaded in ${loaded} ms with ${elements} elements, screenshot ${screenshot}`);
} finally {
  await browser.close();
}
if (failures.length > 0) {
  console.error(`report check FAILED:\n  ${failures.join("\n  ")}`);
  process.exit(1);
}
console.log("report check: 1 passed, 0 failed");
