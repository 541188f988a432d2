// The catalog's page: REST (fetch) lists, filters, creates and edits products,
// Server-Sent Events bring price changes live, and connect-web calls the
// RPC-only GenerateReport. Bundled into ../app.js by ../build.mjs.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { CatalogService } from "./gen/catalog/v1/catalog_pb.js";

const $ = (selector) => document.querySelector(selector);
const rows = new Map(); // product id -> { row, product }
const report = createClient(
  CatalogService,
  // GET for a side-effect-free method: the answer is cacheable like a REST read.
  // The browser revalidates it (ETag) rather than reuse a cached report.
  createConnectTransport({
    baseUrl: location.origin,
    useHttpGet: true,
    fetch: (input, init) => fetch(input, { ...init, cache: "no-cache" }),
  }),
);

function say(text, error = false) {
  $("#status").textContent = text;
  $("#status").classList.toggle("error", error);
}

function headers(extra = {}) {
  const token = $("#token").value.trim();
  return token ? { ...extra, authorization: `Bearer ${token}` } : extra;
}

// A REST call; a failure throws the problem document's detail (RFC 9457).
async function rest(path, init = {}) {
  const response = await fetch(path, { cache: "no-cache", ...init });
  if (response.ok) return response.status === 204 ? null : response.json();
  let detail = `${response.status} ${response.statusText}`;
  try {
    const problem = await response.json();
    detail = problem.detail || problem.title || detail;
  } catch {
    // not a problem document: the status line says enough
  }
  const failure = new Error(detail);
  failure.status = response.status;
  throw failure;
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function show(product) {
  let entry = rows.get(product.id);
  if (!entry) {
    const row = document.createElement("tr");
    row.dataset.id = product.id;
    const price = document.createElement("input");
    price.className = "price";
    price.inputMode = "decimal";
    price.setAttribute("aria-label", "price");
    const save = document.createElement("button");
    save.type = "button";
    save.textContent = "Save price";
    save.addEventListener("click", () => savePrice(product.id));
    const priceCell = document.createElement("td");
    priceCell.className = "price";
    priceCell.append(price);
    const actions = document.createElement("td");
    actions.append(save);
    row.append(cell(product.id), cell(""), cell(""), priceCell, actions);
    $("#products tbody").append(row);
    entry = { row };
    rows.set(product.id, entry);
  }
  entry.product = product;
  entry.row.dataset.state = "current"; // its etag is the one the catalog has
  const [, name, category, priceCell] = entry.row.children;
  name.textContent = product.name;
  category.textContent = product.category;
  priceCell.querySelector("input").value = product.price;
}

async function load() {
  const category = $("#filter-category").value.trim();
  const query = new URLSearchParams({ page_size: "100" });
  if (category) query.set("category", category);
  const page = await rest(`/products?${query}`);
  rows.clear();
  $("#products tbody").replaceChildren();
  page.products.forEach(show);
  $("#more").hidden = !page.next_page_token;
  document.body.dataset.listed = category; // for the browser test
}

async function savePrice(id) {
  const entry = rows.get(id);
  const price = entry.row.querySelector("input.price").value.trim();
  say("Saving…");
  try {
    // If-Match: only if nobody changed the product since this page saw it.
    const product = await rest(`/products/${id}`, {
      method: "PATCH",
      headers: headers({ "content-type": "application/json", "if-match": `"${entry.product.etag}"` }),
      body: JSON.stringify({ price }),
    });
    show(product);
    say(`Saved: ${product.name} now costs ${product.price}.`);
  } catch (failure) {
    if (failure.status === 412) {
      show(await rest(`/products/${id}`));
      say("Someone changed this product meanwhile: here it is as it is now; try again.", true);
    } else {
      say(`Not saved: ${failure.message}`, true);
    }
  }
}

async function create(event) {
  event.preventDefault();
  const form = event.target;
  const fields = Object.fromEntries(new FormData(form));
  say("Creating…");
  try {
    const product = await rest("/products", {
      method: "POST",
      headers: headers({ "content-type": "application/json" }),
      body: JSON.stringify({ name: fields.name, category: fields.category, price: fields.price }),
    });
    const filter = $("#filter-category").value.trim();
    if (!filter || filter === product.category) show(product);
    form.reset();
    say(`Created product ${product.id}: ${product.name}.`);
    refreshReport();
  } catch (failure) {
    say(`Not created: ${failure.message}`, true);
  }
}

function watch() {
  const state = $("#live-state");
  const events = new EventSource("/products:watchPrices");
  events.addEventListener("open", () => {
    state.textContent = "live";
    state.classList.add("open");
  });
  // EventSource reconnects by itself; the catalog ends each watch after a while.
  events.addEventListener("error", () => {
    state.textContent = "reconnecting";
    state.classList.remove("open");
  });
  events.addEventListener("message", async (event) => {
    const change = JSON.parse(event.data);
    const item = document.createElement("li");
    item.textContent = `${change.name}: ${change.old_price} → ${change.new_price}`;
    Object.assign(item.dataset, { product: change.product_id, price: change.new_price });
    $("#changes").prepend(item);
    refreshReport(); // the totals moved too
    const entry = rows.get(change.product_id);
    if (!entry) return;
    entry.row.querySelector("input.price").value = change.new_price;
    entry.row.dataset.state = "refreshing";
    entry.row.classList.remove("flash");
    void entry.row.offsetWidth; // restart the highlight
    entry.row.classList.add("flash");
    // The etag changed too: fetch it, so that the next edit's If-Match holds.
    try {
      const product = await rest(`/products/${change.product_id}`);
      if (rows.has(product.id)) show(product); // unless the list was reloaded meanwhile
    } catch (failure) {
      say(`Could not refresh product ${change.product_id}: ${failure.message}`, true);
    }
  });
}

async function refreshReport() {
  try {
    const { categories } = await report.generateReport({});
    $("#report tbody").replaceChildren(
      ...categories.map((c) => {
        const row = document.createElement("tr");
        row.append(cell(c.category), cell(String(c.productCount)), cell(c.totalValue));
        return row;
      }),
    );
  } catch (failure) {
    say(`Report failed: ${failure.message}`, true);
  }
}

function start() {
  $("#token").value = sessionStorage.getItem("catalog-token") || "";
  $("#token").addEventListener("change", () =>
    sessionStorage.setItem("catalog-token", $("#token").value.trim()),
  );
  $("#filter").addEventListener("submit", (event) => {
    event.preventDefault();
    load().catch((failure) => say(`Could not list products: ${failure.message}`, true));
  });
  $("#create").addEventListener("submit", create);
  $("#refresh-report").addEventListener("click", refreshReport);
  watch();
  Promise.all([load(), refreshReport()])
    .then(() => {
      document.body.dataset.ready = "true"; // for the browser test
    })
    .catch((failure) => say(`Could not list products: ${failure.message}`, true));
}

start();
