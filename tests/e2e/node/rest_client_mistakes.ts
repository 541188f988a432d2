// Mistakes in using the catalog's REST API that tsc must reject. Each line
// after a `@ts-expect-error` is a type error, or the directive itself is one
// ("unused"): compiled with docs_src/other_languages/rest_client.ts, this
// proves the types openapi-typescript generated are precise, not `any`.
import createClient from "openapi-fetch";
import type { paths } from "./catalog.js";

const catalog = createClient<paths>({ baseUrl: "http://127.0.0.1" });

export async function mistakes(): Promise<void> {
  // @ts-expect-error an id is a number
  await catalog.GET("/products/{id}", { params: { path: { id: "one" } } });
  // @ts-expect-error there is no /product/{id}
  await catalog.GET("/product/{id}", { params: { path: { id: 1 } } });
  // @ts-expect-error a new product needs a price
  await catalog.POST("/products", { body: { name: "Kettle", category: "c", tags: [] } });
  // @ts-expect-error products are not replaced by POST
  await catalog.POST("/products/{id}", { params: { path: { id: 1 } } });
  const got = await catalog.GET("/products/{id}", { params: { path: { id: 1 } } });
  // @ts-expect-error a product has no cost
  console.log(got.data?.cost);
  // @ts-expect-error a problem's code is a canonical code name
  console.log(got.error?.code === "missing");
}
