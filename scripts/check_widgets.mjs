// Opens a notebook in a real JupyterLab with headless Chromium, runs all cells, screenshots the first widget,
// moves its slider and screenshots again. Not part of CI (needs Debian's chromium and npm's playwright-core):
//   (from a copy of notebooks/: JupyterLab autosaves what it opens)
//   CLORA_SMOKE=1 jupyter lab --no-browser --port 8899 --IdentityProvider.token='' &
//   NODE_PATH=$(npm root) node scripts/check_widgets.mjs notebooks/01_lora_from_scratch.ipynb OUTDIR
import { chromium } from "playwright-core";

const [nb, outDir = "/tmp"] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1300, height: 1000 } });
await page.goto(`http://127.0.0.1:8899/lab/tree/${nb}`);
await page.waitForSelector(".jp-Notebook", { timeout: 60000 });
await page.waitForSelector(".jp-Notebook-ExecutionIndicator[data-status='idle']", { timeout: 60000 }).catch(() => {});
await page.click("text=Run", { timeout: 10000 });
await page.click("text=Run All Cells", { timeout: 10000 });
await page.click("text=No", { timeout: 5000 }).catch(() => {});   // the "Jupyter news?" toast
// wait for the whole run to end: the kernel handles slider events only once it is idle
await page.waitForSelector("text=parametrize version == LoRALinear", { timeout: 300000 });
const slider = page.locator(".widget-slider .noUi-handle, .widget-slider input").first();
await slider.waitFor({ timeout: 240000 });
const box = page.locator(".widget-vbox").first();
await box.scrollIntoViewIfNeeded();
await page.waitForTimeout(1500);
await box.screenshot({ path: `${outDir}/widget_rank4.png` });
const img = page.locator(".widget-vbox img").first();
const srcBefore = await img.getAttribute("src");
const handle = await page.locator(".widget-slider .noUi-handle").first().boundingBox();
const track = await page.locator(".widget-slider .noUi-target").first().boundingBox();
await page.mouse.move(handle.x + handle.width / 2, handle.y + handle.height / 2);   // drag rank 4 -> ~32
await page.mouse.down();
await page.mouse.move(track.x + track.width / 2, handle.y + handle.height / 2, { steps: 8 });
await page.mouse.up();
let srcAfter = srcBefore;
for (let i = 0; i < 30 && srcAfter === srcBefore; i++) {
  await page.waitForTimeout(1000);
  srcAfter = await page.locator(".widget-vbox img").first().getAttribute("src");
}
console.log(`picture changed after moving the slider: ${srcAfter !== srcBefore}`);
await box.screenshot({ path: `${outDir}/widget_moved.png` });
const label = await page.locator(".widget-readout").first().innerText();
console.log(`slider readout after moving: ${label}`);
await browser.close();
