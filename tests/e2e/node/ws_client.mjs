// JSON-RPC 2.0 over WebSocket with the `ws` package: a unary call, a batch, and
// WatchPrices as a subscription that sees a price change made over REST.
// Usage: node ws_client.mjs WS_URL HTTP_URL TOKEN; prints one JSON object.
import WebSocket from "ws";

const [wsUrl, httpUrl, token] = process.argv.slice(2);
const ws = new WebSocket(wsUrl, "jsonrpc", { headers: { Authorization: `Bearer ${token}` } });
const waiting = new Map(); // id -> resolve
const notes = [];
let noted = null;

ws.on("message", (data) => {
  const message = JSON.parse(data.toString());
  if (Array.isArray(message)) {
    waiting.get("batch")(message);
  } else if (message.method === "rpc.subscription") {
    notes.push(message.params);
    if (noted) noted();
  } else {
    waiting.get(message.id)(message);
  }
});

let nextId = 100;
function call(method, params) {
  const id = nextId++;
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    ws.send(JSON.stringify({ jsonrpc: "2.0", method, params, id }));
  });
}

function notification() {
  return new Promise((resolve) => {
    const check = () => {
      if (notes.length) {
        noted = null;
        resolve(notes.shift());
      }
    };
    noted = check;
    check();
  });
}

await new Promise((resolve, reject) => {
  ws.on("open", resolve);
  ws.on("error", reject);
});
const category = `node-ws-${Date.now()}`;
const created = (await call("CreateProduct", { product: { name: "Kettle", price: "20.00", category } }))
  .result;
const batch = await new Promise((resolve) => {
  waiting.set("batch", resolve);
  ws.send(
    JSON.stringify([
      { jsonrpc: "2.0", method: "GetProduct", params: { id: 1e12 }, id: 2 },
      { jsonrpc: "2.0", method: "GetProduct", params: [created.id], id: 3 },
    ]),
  );
});
const subscription = (await call("WatchPrices", { category })).result;
await fetch(`${httpUrl}/products/${created.id}`, {
  method: "PATCH",
  headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
  body: JSON.stringify({ price: "21.00" }),
});
const change = await notification();
const unsubscribed = (await call("rpc.unsubscribe", { subscription })).result;
ws.close();
console.log(
  JSON.stringify({
    created,
    batch: batch
      .sort((a, b) => a.id - b.id)
      .map((a) => (a.error ? { id: a.id, code: a.error.data.code } : { id: a.id, ok: a.result.id === created.id })),
    change: change.subscription === subscription
      ? { oldPrice: change.result.old_price, newPrice: change.result.new_price }
      : null,
    unsubscribed,
  }),
);
