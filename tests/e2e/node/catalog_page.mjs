// Drives the catalog's page in Debian's headless Chromium with playwright-core,
// one command per line on stdin, one JSON answer per line on stdout, so that
// the Python test (tests/e2e/test_browser_page.py) interleaves page steps with
// its own REST and gRPC calls. argv: the catalog's base URL, a fresh profile dir.
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const [base, profile] = process.argv.slice(2);
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1200, height: 760 },
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const page = context.pages()[0] ?? (await context.newPage());
const errors = [];
page.on("console", (message) => {
  if (message.type() === "error") errors.push(`console: ${message.text()}`);
});
page.on("pageerror", (error) => errors.push(`page: ${error.message}`));
page.on("requestfailed", (request) => {
  // The live price stream is cut when the page goes away: not a fault.
  if (!request.url().includes(":watchPrices")) {
    errors.push(`request: ${request.url()} ${request.failure()?.errorText}`);
  }
});

const row = (id) => page.locator(`#products tr[data-id="${id}"]`);
const commands = {
  async open() {
    await page.goto(`${base}/ui`);
    await page.waitForSelector("body[data-ready=true]");
    await page.waitForSelector("#live-state.open");
    return { title: await page.title() };
  },
  async token({ token }) {
    await page.fill("#token", token);
    return {};
  },
  async filter({ category }) {
    await page.evaluate(() => delete document.body.dataset.listed);
    await page.fill("#filter-category", category);
    await page.click("#filter button");
    await page.waitForFunction((c) => document.body.dataset.listed === c, category);
    return { rows: await page.locator("#products tbody tr").count() };
  },
  async create({ name, category, price }) {
    await page.fill("#create input[name=name]", name);
    await page.fill("#create input[name=category]", category);
    await page.fill("#create input[name=price]", price);
    await page.click("#create button");
    await page.waitForFunction(() => /^(Created|Not created)/.test(document.querySelector("#status").textContent));
    const status = await page.textContent("#status");
    const id = Number(/Created product (\d+)/.exec(status)?.[1]);
    return { status, id };
  },
  async price({ id }) {
    return { price: await row(id).locator("input.price").inputValue() };
  },
  async waitPrice({ id, price, timeout }) {
    await page.waitForFunction(
      // Shown, and the product fetched again with its new etag.
      ([id, price]) => {
        const row = document.querySelector(`#products tr[data-id="${id}"]`);
        return row?.querySelector("input.price").value === price && row.dataset.state === "current";
      },
      [id, price],
      { timeout },
    );
    return {};
  },
  async waitChange({ id, price }) {
    // The change reached the page over SSE, and the product was fetched again.
    await page.waitForFunction(
      ([id, price]) =>
        document.querySelector(`#changes li[data-product="${id}"][data-price="${price}"]`) &&
        document.querySelector(`#products tr[data-id="${id}"]`)?.dataset.state === "current",
      [id, price],
    );
    return {};
  },
  async editPrice({ id, price }) {
    await row(id).locator("input.price").fill(price);
    await row(id).locator("button").click();
    await page.waitForFunction(() => /^(Saved|Not saved|Someone)/.test(document.querySelector("#status").textContent));
    return { status: await page.textContent("#status") };
  },
  async report({ category }) {
    await page.waitForFunction(
      (c) => [...document.querySelectorAll("#report tbody td:first-child")].some((td) => td.textContent === c),
      category,
    );
    return { categories: await page.locator("#report tbody td:first-child").allTextContents() };
  },
  async screenshot({ path }) {
    await page.screenshot({ path, fullPage: true });
    return {};
  },
  async errors() {
    // The errors since the last time asked.
    return { errors: errors.splice(0) };
  },
};

for await (const line of createInterface({ input: process.stdin })) {
  const { command, ...args } = JSON.parse(line);
  let answer;
  try {
    answer = { ok: true, ...(await commands[command](args)) };
  } catch (error) {
    answer = { ok: false, error: String(error?.message ?? error) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
await context.close();
