// Mistakes in using the catalog's APIs that tsc must reject. Each line after
// a `@ts-expect-error` is a type error, or the directive itself is one
// ("unused"): compiled with docs_src/other_languages/rest_client.ts and
// rpc_client.ts, this proves the types that openapi-typescript and
// protoc-gen-es generated are precise, not `any`.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import createFetchClient from "openapi-fetch";
import type { paths } from "./catalog.js";
import { CatalogService } from "./gen/catalog/v1/catalog_pb.js";

const rest = createFetchClient<paths>({ baseUrl: "http://127.0.0.1" });
const transport = createConnectTransport({ baseUrl: "http://127.0.0.1", httpVersion: "1.1" });
const rpc = createClient(CatalogService, transport);

export async function restMistakes(): Promise<void> {
  // @ts-expect-error an id is a number
  await rest.GET("/products/{id}", { params: { path: { id: "one" } } });
  // @ts-expect-error there is no /product/{id}
  await rest.GET("/product/{id}", { params: { path: { id: 1 } } });
  // @ts-expect-error a new product needs a price
  await rest.POST("/products", { body: { name: "Kettle", category: "c", tags: [] } });
  // @ts-expect-error products are not replaced by POST
  await rest.POST("/products/{id}", { params: { path: { id: 1 } } });
  const got = await rest.GET("/products/{id}", { params: { path: { id: 1 } } });
  // @ts-expect-error a product has no cost
  console.log(got.data?.cost);
  // @ts-expect-error a problem's code is a canonical code name
  console.log(got.error?.code === "missing");
}

export async function rpcMistakes(): Promise<void> {
  // @ts-expect-error an int64 is a bigint
  await rpc.getProduct({ id: "one" });
  // @ts-expect-error there is no GetProducts
  await rpc.getProducts({});
  // @ts-expect-error a new product's price is a decimal string
  await rpc.createProduct({ product: { name: "Kettle", price: 24.5, category: "c" } });
  const got = await rpc.getProduct({ id: 1n });
  // @ts-expect-error a product has no cost
  console.log(got.cost);
}
