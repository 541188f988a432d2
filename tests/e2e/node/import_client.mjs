// Client streaming with connect-es over HTTP/2 (h2c): ImportProducts, and a
// bidi-free check that the request stream is read as it is sent. Usage:
//   node import_client.mjs GEN_DIR HTTP2_URL
import { pathToFileURL } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";

const [genDir, url] = process.argv.slice(2);
const { CatalogService } = await import(pathToFileURL(`${genDir}/catalog/v1/catalog_pb.js`).href);
const category = `import-${Date.now()}`;
// The catalog's writes may need a bearer token (the test passes one when they do).
const token = process.env.CATALOG_TOKEN;
const authorize = (next) => async (req) => {
  if (token) req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

async function* products() {
  for (const [name, price] of [["A", "1.00"], ["B", "2.50"], ["A", "1.00"]]) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    yield { product: { name, price, category } };
  }
}

const results = {};
for (const binary of [false, true]) {
  const transport = createConnectTransport({
    baseUrl: url,
    httpVersion: "2",
    useBinaryFormat: binary,
    interceptors: [authorize],
  });
  const client = createClient(CatalogService, transport);
  const summary = await client.importProducts(products());
  results[binary ? "binary" : "json"] = {
    created: Number(summary.created),
    failed: summary.failed.map((f) => [Number(f.index), f.name]),
  };
}
console.log(JSON.stringify(results));
