// The catalog over Connect from TypeScript: connect-es, with the CatalogService
// that protoc-gen-es generated from the exported .proto (gen/ beside this
// file). Compiled with `tsc --strict`, run by Node:
//   node rpc_client.js BASE_URL TOKEN
// Prints what it saw as JSON (tests/e2e/test_other_languages.py judges it).
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { CatalogService } from "./gen/catalog/v1/catalog_pb.js";

const [baseUrl, token] = process.argv.slice(2);
const authorize: Interceptor = (next) => (request) => {
  request.header.set("authorization", `Bearer ${token}`);
  return next(request);
};
// createGrpcWebTransport or createGrpcTransport instead: the same client, other wires.
const transport = createConnectTransport({
  baseUrl,
  httpVersion: "1.1",
  interceptors: [authorize],
});
const catalog = createClient(CatalogService, transport);
const category = `connect-${Date.now()}`;

const product = await catalog.createProduct({
  product: { name: "Kettle", price: "24.50", category, tags: ["kitchen"] },
});
const got = await catalog.getProduct({ id: product.id }); // int64: a bigint
const page = await catalog.listProducts({ category, pageSize: 10 });

// An error is thrown: a ConnectError with the code the server chose.
let missing = { code: "none", message: "" };
try {
  await catalog.getProduct({ id: 987654321n });
} catch (err) {
  const error = ConnectError.from(err);
  missing = { code: Code[error.code], message: error.rawMessage };
}

console.log(
  JSON.stringify({
    created: { id: String(product.id), category: product.category },
    got: { id: String(got.id), name: got.name, price: got.price, tags: got.tags },
    listed: page.products.map((p) => String(p.id)),
    missing,
  }),
);
