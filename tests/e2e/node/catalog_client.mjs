// Calls the running catalog with connect-es, from code protoc-gen-es generated
// from the exported .proto. Usage:
//   node catalog_client.mjs GEN_DIR HTTP_URL [GRPC_URL]
// Prints one JSON object: what each transport saw, for the Python test to judge.
import { pathToFileURL } from "node:url";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";

const [genDir, httpUrl, grpcUrl] = process.argv.slice(2);
const { CatalogService, OrderStatus } = await import(
  pathToFileURL(`${genDir}/catalog/v1/catalog_pb.js`).href
);

const category = `node-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;

// The catalog's writes need a bearer token (the test passes a development one).
const token = process.env.CATALOG_TOKEN;
const authorize = (next) => async (req) => {
  if (token) req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};
const interceptors = [authorize];

function transports() {
  const out = {
    "connect-json": createConnectTransport({ baseUrl: httpUrl, httpVersion: "1.1", interceptors }),
    "connect-binary": createConnectTransport({
      baseUrl: httpUrl,
      httpVersion: "1.1",
      useBinaryFormat: true,
      interceptors,
    }),
    "connect-get": createConnectTransport({
      baseUrl: httpUrl,
      httpVersion: "1.1",
      // GetProduct is NO_SIDE_EFFECTS in the .proto: connect-es sends it by GET.
      useHttpGet: true,
      interceptors,
    }),
    "grpc-web": createGrpcWebTransport({ baseUrl: httpUrl, httpVersion: "1.1", interceptors }),
  };
  if (grpcUrl) {
    out.grpc = createGrpcTransport({ baseUrl: grpcUrl, interceptors });
  }
  return out;
}

async function errorCode(promise) {
  try {
    await promise;
    return "none";
  } catch (err) {
    return Code[ConnectError.from(err).code];
  }
}

async function unary(client, mine) {
  const created = await client.createProduct({
    product: { name: "Kettle", price: "24.50", category: mine, tags: ["kitchen"] },
  });
  const got = await client.getProduct({ id: created.id });
  const page = await client.listProducts({ category: mine, pageSize: 10 });
  const missing = await errorCode(client.getProduct({ id: 987654321n }));
  const invalid = await errorCode(
    client.createProduct({ product: { name: "", price: "cheap", category } }),
  );
  const user = await client.createUser({
    user: { name: "Ada", email: `${category}-${Math.random()}@example.com` },
  });
  const order = await client.createOrder({
    userId: user.id,
    order: { productId: created.id, quantity: 2 },
  });
  const cancelled = await client.cancelOrder({ userId: user.id, orderId: order.id });
  return {
    same: got.id === created.id && got.name === "Kettle" && got.price === "24.50",
    idType: typeof got.id,
    tags: got.tags,
    listed: page.products.map((p) => p.id === created.id),
    missing,
    invalid,
    total: order.total,
    status: OrderStatus[cancelled.status],
  };
}

async function stream(client, writer) {
  // WatchPrices: a price change made while the stream is open arrives on it.
  const product = await writer.createProduct({
    product: { name: "Clock", price: "10.00", category },
  });
  const abort = new AbortController();
  const timer = setTimeout(() => {
    writer.updateProduct({ id: product.id, product: { price: "12.00" }, updateMask: "price" });
  }, 700);
  try {
    for await (const change of client.watchPrices({ category }, { signal: abort.signal })) {
      abort.abort();
      return {
        productId: change.productId === product.id,
        oldPrice: change.oldPrice,
        newPrice: change.newPrice,
      };
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
  }
  return null;
}

const results = {};
const all = transports();
const writer = createClient(CatalogService, all["connect-json"]);
for (const [name, transport] of Object.entries(all)) {
  const client = createClient(CatalogService, transport);
  try {
    // A category of its own per transport, so that its list holds only its product.
    results[name] = { unary: await unary(client, `${category}-${name}`) };
    if (name !== "connect-get") {
      results[name].stream = await stream(client, writer);
    }
  } catch (err) {
    results[name] = { failed: String(err) };
  }
}
console.log(JSON.stringify(results));
