// The catalog's QuotePrices (bidi) with connect-es over HTTP/2: Connect (JSON
// and binary), gRPC and gRPC-Web. Each id is sent only once the answer to the
// one before has arrived, so the call completes only if the server answers
// each id as it comes (a server that waited for the end of the requests would
// wait for ever, and the deadline would end the call). Usage:
//   node quote_client.mjs GEN_DIR URL ID...
// Prints one JSON object: per transport, the events in the order they
// happened and the answers, for the Python test to judge.
import { pathToFileURL } from "node:url";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";

const [genDir, url, ...ids] = process.argv.slice(2);
const { CatalogService } = await import(
  pathToFileURL(`${genDir}/catalog/v1/catalog_pb.js`).href
);

async function quote(client) {
  const events = [];
  const answers = [];
  let answered = () => {};
  async function* requests() {
    for (const id of ids) {
      const next = new Promise((resolve) => (answered = resolve));
      events.push(`sent ${id}`);
      yield { productId: BigInt(id) };
      await next; // the next id waits for this one's answer
    }
  }
  try {
    for await (const q of client.quotePrices(requests(), { timeoutMs: 20000 })) {
      events.push(`got ${q.productId}`);
      answers.push({ productId: String(q.productId), found: q.found, price: q.price ?? null });
      answered();
    }
  } catch (err) {
    return { error: Code[ConnectError.from(err).code], events, answers };
  }
  return { events, answers };
}

const h2 = { baseUrl: url, httpVersion: "2" };
const transports = {
  "connect-json": createConnectTransport(h2),
  "connect-binary": createConnectTransport({ ...h2, useBinaryFormat: true }),
  grpc: createGrpcTransport(h2),
  "grpc-web": createGrpcWebTransport(h2),
};

const results = {};
for (const [name, transport] of Object.entries(transports)) {
  results[name] = await quote(createClient(CatalogService, transport));
}
console.log(JSON.stringify(results));
