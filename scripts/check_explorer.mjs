// Opens a notebook holding a clora_lite explorer (inside/explorers.py) in a real JupyterLab with headless Chromium,
// runs all cells, screenshots the first explorer, moves its task slider and switches its "method A", and prints
// whether the plotly pictures changed each time. Not part of CI (needs Debian's chromium and npm's playwright-core):
//   (from a copy of the notebook's folder: JupyterLab autosaves what it opens)
//   CLORA_SMOKE=1 jupyter lab --no-browser --port 8899 --IdentityProvider.token='' &
//   PORT=8899 node check_explorer.mjs NOTEBOOK.ipynb OUTDIR ["TEXT a cell prints once the others have run"]
// ES modules ignore NODE_PATH: copy this file next to the node_modules that holds playwright-core.
// Chapter 05: 05_looking_inside.ipynb OUTDIR (chapter 02 no longer has an explorer).
// The first explorer must have a task slider and a method dropdown (RoutingExplorer, ForgettingExplorer).
import { chromium } from "playwright-core";

const [nb, outDir = "/tmp", doneText = "all cells ran"] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
const port = process.env.PORT ?? "8899";
await page.goto(`http://127.0.0.1:${port}/lab/tree/${nb}?reset`);   // ?reset: no tabs restored from an earlier visit
await page.waitForSelector(".jp-Notebook", { timeout: 60000 });
await page.click(".jp-Dialog >> text=Select", { timeout: 3000 }).catch(() => {});   // a notebook without a kernelspec
await page.waitForSelector(".jp-Notebook-ExecutionIndicator[data-status='idle']", { timeout: 60000 }).catch(() => {});
await page.click("text=Run", { timeout: 10000 });
await page.click("text=Run All Cells", { timeout: 10000 });
await page.click("text=No", { timeout: 5000 }).catch(() => {});   // the "Jupyter news?" toast
// wait for the whole run to end: the kernel handles widget events only once it is idle
await page.waitForSelector(`.jp-OutputArea-output >> text=${doneText}`, { timeout: 300000 });   // an output, not the code
await page.getByRole("button", { name: "No", exact: true }).click({ timeout: 3000 }).catch(() => {});   // a late toast

const box = page.locator(".widget-vbox").filter({ has: page.locator(".widget-slider") }).first();
await box.locator(".js-plotly-plot").first().waitFor({ timeout: 60000 });
await box.scrollIntoViewIfNeeded();
await page.waitForTimeout(1500);

// What the plot shows: its traces' data as plotly holds them on the graph div, and a screenshot.
const plotData = () => box.locator(".js-plotly-plot")
  .evaluateAll((els) => JSON.stringify(els.map((el) => el.data.map((t) => [t.name ?? "", t.z ?? t.y ?? null]))));
const title = () => box.locator(".js-plotly-plot .gtitle").first().textContent().catch(() => "");
async function waitForChange(before) {
  for (let i = 0; i < 40; i++) {
    await page.waitForTimeout(500);
    const now = await plotData().catch(() => before);
    if (now !== before) return now;
  }
  return before;
}

const shot0 = await box.screenshot({ path: `${outDir}/explorer_start.png` });
const data0 = await plotData();
console.log(`plotly plot rendered: true; title: ${await title()}`);

// 1. drag the task slider's handle to the other end of its track; the slider fires once, on release
const handle = await box.locator(".widget-slider .noUi-handle").first().boundingBox();
const track = await box.locator(".widget-slider .noUi-target").first().boundingBox();
const atLeft = handle.x + handle.width / 2 < track.x + track.width / 2;
await page.mouse.move(handle.x + handle.width / 2, handle.y + handle.height / 2);
await page.mouse.down();
await page.mouse.move(atLeft ? track.x + track.width - 2 : track.x + 2, handle.y + handle.height / 2, { steps: 8 });
await page.mouse.up();
const data1 = await waitForChange(data0);
const readout = await box.locator(".widget-readout").first().innerText();
await page.waitForTimeout(800);
const shot1 = await box.screenshot({ path: `${outDir}/explorer_slider_moved.png` });
console.log(`slider readout after moving: ${readout}; title: ${await title()}`);
console.log(`picture changed after moving the slider: ${data1 !== data0 && !shot1.equals(shot0)}`);

// 2. switch method A to the next option of its dropdown
const select = box.locator(".widget-dropdown select").first();
// ipywidgets writes the spaces of option labels as no-break spaces: compare labels with plain spaces
const plain = (t) => t.replace(/\u00a0/g, " ").trim();
const options = (await select.locator("option").allTextContents()).map(plain);
const current = plain(await select.inputValue());
const methodB = plain(await box.locator(".widget-dropdown select").nth(1).inputValue());
const next = options.find((o) => o !== current && o !== methodB) ?? options.find((o) => o !== current);
await select.selectOption({ index: options.indexOf(next) });
const data2 = await waitForChange(data1);
await page.waitForTimeout(800);
const shot2 = await box.screenshot({ path: `${outDir}/explorer_method_switched.png` });
console.log(`method A: ${current} -> ${next}; title: ${await title()}`);
console.log(`picture changed after switching method: ${data2 !== data1 && !shot2.equals(shot1)}`);
await browser.close();
