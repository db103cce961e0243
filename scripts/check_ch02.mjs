// Chapter 02's routing explorer in a real JupyterLab with headless Chromium: open the notebook, run all cells,
// screenshot the explorer, move its "after task" slider to the other end, screenshot again, and print whether the
// plotly picture changed (its traces' data and the screenshot). Not part of CI (needs Debian's chromium and npm's
// playwright-core). JupyterLab autosaves what it opens, so serve a copy of notebooks/:
//   cp -r notebooks /tmp/ch02_nb && cd /tmp/ch02_nb
//   CLORA_SMOKE=1 jupyter lab --no-browser --port 8931 --IdentityProvider.token='' &
//   PORT=8931 NODE_PATH=$(npm root) node /path/to/scripts/check_ch02.mjs 02_routing_matrix.ipynb /tmp/ch02_shots
import { chromium } from "playwright-core";

const [nb = "02_routing_matrix.ipynb", outDir = "/tmp/ch02_shots"] = process.argv.slice(2);
const port = process.env.PORT ?? "8931";
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
await page.goto(`http://127.0.0.1:${port}/lab/tree/${nb}?reset`);
await page.waitForSelector(".jp-Notebook", { timeout: 60000 });
await page.click(".jp-Dialog >> text=Select", { timeout: 3000 }).catch(() => {});
await page.waitForSelector(".jp-Notebook-ExecutionIndicator[data-status='idle']", { timeout: 60000 }).catch(() => {});
await page.click("text=Run", { timeout: 10000 });
await page.click("text=Run All Cells", { timeout: 10000 });
await page.click("text=No", { timeout: 5000 }).catch(() => {});   // the "Jupyter news?" toast

// The explorer is the last code cell: wait for its plot, then for the kernel to go idle (it handles widget
// events only then).
const box = page.locator(".widget-vbox").filter({ has: page.locator(".widget-slider") }).first();
await box.locator(".js-plotly-plot").first().waitFor({ timeout: 600000 });
await page.waitForSelector(".jp-Notebook-ExecutionIndicator[data-status='idle']", { timeout: 120000 }).catch(() => {});
await page.getByRole("button", { name: "No", exact: true }).click({ timeout: 3000 }).catch(() => {});
await box.scrollIntoViewIfNeeded();
await page.waitForTimeout(2000);

const plotData = () => box.locator(".js-plotly-plot")
  .evaluateAll((els) => JSON.stringify(els.map((el) => el.data.map((t) => [t.name ?? "", t.z ?? t.y ?? null]))));
const title = () => box.locator(".js-plotly-plot .gtitle").first().textContent().catch(() => "");
async function waitForChange(before) {
  for (let i = 0; i < 60; i++) {
    await page.waitForTimeout(500);
    const now = await plotData().catch(() => before);
    if (now !== before) return now;
  }
  return before;
}

const readout = () => box.locator(".widget-readout").first().innerText();
const shot0 = await box.screenshot({ path: `${outDir}/routing_explorer_start.png` });
const data0 = await plotData();
console.log(`plotly plot rendered: true; slider at ${await readout()}; title: ${await title()}`);

const handle = await box.locator(".widget-slider .noUi-handle").first().boundingBox();
const track = await box.locator(".widget-slider .noUi-target").first().boundingBox();
const atLeft = handle.x + handle.width / 2 < track.x + track.width / 2;
await page.mouse.move(handle.x + handle.width / 2, handle.y + handle.height / 2);
await page.mouse.down();
await page.mouse.move(atLeft ? track.x + track.width - 2 : track.x + 2, handle.y + handle.height / 2, { steps: 8 });
await page.mouse.up();
const data1 = await waitForChange(data0);
await page.waitForTimeout(1000);
const shot1 = await box.screenshot({ path: `${outDir}/routing_explorer_slider_moved.png` });
console.log(`slider readout after moving: ${await readout()}; title: ${await title()}`);
console.log(`picture changed after moving the slider: ${data1 !== data0 && !shot1.equals(shot0)}`);
await browser.close();
