// The catalog over REST from TypeScript: openapi-fetch, typed by the `paths`
// that openapi-typescript generated from the catalog's OpenAPI document
// (catalog.d.ts beside this file). Compiled with `tsc --strict`, run by Node:
//   node rest_client.js BASE_URL TOKEN
// Prints what it saw as JSON (tests/e2e/test_other_languages.py judges it).
import createClient from "openapi-fetch";
import type { components, paths } from "./catalog.js";

type Product = components["schemas"]["Product"];

const [baseUrl, token] = process.argv.slice(2);
const catalog = createClient<paths>({ baseUrl, headers: { authorization: `Bearer ${token}` } });
const category = `ts-${Date.now()}`;

const created = await catalog.POST("/products", {
  body: { name: "Kettle", price: "24.50", category, tags: ["kitchen"] },
});
if (created.error) throw new Error(`CreateProduct: ${created.error.detail}`);
const product: Product = created.data;

const got = await catalog.GET("/products/{id}", { params: { path: { id: product.id } } });
const page = await catalog.GET("/products", { params: { query: { category, page_size: 10 } } });

// An error is not thrown: `error` is the problem document (RFC 9457), typed.
const missing = await catalog.GET("/products/{id}", { params: { path: { id: 987654321 } } });

console.log(
  JSON.stringify({
    created: {
      status: created.response.status,
      location: created.response.headers.get("location"),
      id: product.id,
    },
    got: got.data,
    listed: page.data?.products.map((p) => p.id),
    missing: {
      status: missing.response.status,
      code: missing.error?.code,
      detail: missing.error?.detail,
    },
  }),
);
