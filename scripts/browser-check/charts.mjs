// Chart readability, as a reader's browser renders it:
//  - a clipped title (inspectPictures, on the pictures in view): ink of the title band (its
//    top rows) touching the picture's left or right edge, measured on the decoded pixels;
//  - an unreadable axis: in every chart's SVG (the same layout as its PNG, text as text),
//    two text elements whose rendered boxes overlap (tick labels smeared into each other,
//    a legend over a label), or a text box that leaves the picture.
// checkCharts returns the SVGs' failures as lines and prints how many charts of each kind
// it looked at.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

/// The kind of a chart, from its file name (for the summary line).
function kind(name) {
  if (name.includes("_heatmap")) return "heatmap";
  if (name.startsWith("quality_vs_")) return "quality";
  if (name === "loss_curves.svg" || name === "level_loss.svg") return "training";
  return "by key";
}

/// The pictures of the page now (`scope`: null for those no pager holds, n for those of
/// the page in view of the list the n-th pager holds), each loaded (a lazy one forced),
/// decoded and its title looked at: ink of the title band (its top rows) touching the
/// picture's left or right edge is clipped.
export async function inspectPictures(page, scope) {
  return page.evaluate(async (scope) => {
    const all = scope === null
      ? Array.from(document.querySelectorAll("img")).filter((img) => {
        const list = img.closest(".paged");
        return !(list && (list.pager || (list.tBodies && list.tBodies[0].pager)));
      })
      : Array.from(document.querySelectorAll("nav.pager")[scope].nextElementSibling.querySelectorAll("img"));
    return Promise.all(all.map(async (img) => {
      img.loading = "eager";
      try {
        await img.decode();
      } catch {
        return { alt: `${img.alt} (${img.src.slice(0, 80)})`, ok: false, clipped: false };
      }
      const canvas = document.createElement("canvas");
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const context = canvas.getContext("2d");
      context.drawImage(img, 0, 0);
      const band = Math.min(90, Math.floor(canvas.height * 0.2));
      const { data } = context.getImageData(0, 0, canvas.width, band);
      const dark = (x, y) => {
        const i = 4 * (y * canvas.width + x);
        return data[i] + data[i + 1] + data[i + 2] < 3 * 110;
      };
      let clipped = false;
      for (let y = 0; y < band && !clipped; y++) {
        for (const x of [0, 1, 2, canvas.width - 3, canvas.width - 2, canvas.width - 1]) {
          if (dark(x, y)) clipped = true;
        }
      }
      return { alt: img.alt, ok: img.naturalWidth > 0, clipped };
    }));
  }, scope);
}

export async function checkCharts(browser, plots) {
  const failures = [];
  // Axes and labels: every text of every chart's SVG inside the picture and clear of the others.
  let svgs = [];
  try {
    svgs = readdirSync(plots).filter((n) => n.endsWith(".svg")).sort();
  } catch {
    // A report without charts has nothing to check here.
  }
  const counts = {};
  const view = await browser.newPage();
  for (const name of svgs) {
    counts[kind(name)] = (counts[kind(name)] ?? 0) + 1;
    await view.goto(pathToFileURL(join(plots, name)).href);
    const problems = await view.$$eval("text", (texts) => {
      const svg = document.documentElement.getBoundingClientRect();
      const boxes = texts
        .map((t) => ({ text: t.textContent.trim(), box: t.getBoundingClientRect() }))
        .filter((t) => t.text.length > 0);
      const found = [];
      for (const { text, box } of boxes) {
        if (box.left < svg.left - 1 || box.right > svg.right + 1 || box.top < svg.top - 1 || box.bottom > svg.bottom + 1) {
          found.push(`"${text}" leaves the picture`);
        }
      }
      // Overlap by more than 1.5 px both ways (fonts' boxes carry a little air).
      for (let i = 0; i < boxes.length; i++) {
        for (let j = i + 1; j < boxes.length; j++) {
          const a = boxes[i].box, b = boxes[j].box;
          const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
          const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
          if (w > 1.5 && h > 1.5) found.push(`"${boxes[i].text}" overlaps "${boxes[j].text}"`);
        }
      }
      return found;
    });
    const shown = problems.slice(0, 3).join("; ") + (problems.length > 3 ? `; and ${problems.length - 3} more` : "");
    if (problems.length > 0) failures.push(`${name}: ${shown}`);
  }
  await view.close();
  const summary = Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(", ");
  console.log(`chart check: ${svgs.length} charts (${summary || "none"})`);
  return failures;
}
