// The catalog's QuotePrices (bidi) with @grpc/grpc-js, its types loaded by
// @grpc/proto-loader from the .proto `twofold proto` exports. Each id is
// written only once the answer to the one before has arrived. Usage:
//   node quote_grpc_js.mjs PROTO_DIR GOOGLEAPIS_DIR HOST:PORT ID...
// Prints one JSON object: the events in the order they happened, the
// answers, and the status name if the call failed.
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const [protoDir, googleapis, target, ...ids] = process.argv.slice(2);
const definition = protoLoader.loadSync("catalog/v1/catalog.proto", {
  includeDirs: [protoDir, googleapis],
  longs: String, // int64 as decimal strings
});
const { CatalogService } = grpc.loadPackageDefinition(definition).catalog.v1;
const client = new CatalogService(target, grpc.credentials.createInsecure());

const events = [];
const answers = [];
const call = client.QuotePrices({ deadline: Date.now() + 20000 });
let next = 0;
function sendNext() {
  if (next === ids.length) {
    call.end(); // half-close: the server ends the stream
    return;
  }
  events.push(`sent ${ids[next]}`);
  call.write({ productId: ids[next] });
  next += 1;
}
call.on("data", (quote) => {
  events.push(`got ${quote.productId}`);
  // proto3 leaves false and an absent optional off the wire.
  answers.push({ productId: quote.productId, found: quote.found ?? false, price: quote.price ?? null });
  sendNext();
});
call.on("error", (err) => {
  console.log(JSON.stringify({ error: grpc.status[err.code], events, answers }));
  client.close();
});
call.on("end", () => {
  console.log(JSON.stringify({ events, answers }));
  client.close();
});
sendNext();
