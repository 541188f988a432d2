// Every streaming kind with connect-es against one port: Connect, gRPC and
// gRPC-Web over HTTP/2 (h2c), and the kinds HTTP/1.1 can carry over it. Usage:
//   node streams_client.mjs GEN_DIR URL
// Prints one JSON object: what each transport saw, for the Python test to judge.
import { pathToFileURL } from "node:url";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";

const [genDir, url] = process.argv.slice(2);
const { Streams } = await import(pathToFileURL(`${genDir}/streams/v1/streams_pb.js`).href);

async function* numbers(...values) {
  for (const n of values) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    yield { n: BigInt(n) };
  }
}

async function errorCode(promise) {
  try {
    await promise;
    return "none";
  } catch (err) {
    return Code[ConnectError.from(err).code];
  }
}

async function collect(stream) {
  const out = [];
  for await (const m of stream) out.push(Number(m.n));
  return out;
}

const h2 = { baseUrl: url, httpVersion: "2" };
const h1 = { baseUrl: url, httpVersion: "1.1" };
const transports = {
  "connect-json-h2": [createConnectTransport(h2), true],
  "connect-binary-h2": [createConnectTransport({ ...h2, useBinaryFormat: true }), true],
  "grpc-h2": [createGrpcTransport(h2), true],
  "grpc-web-h2": [createGrpcWebTransport(h2), true],
  "connect-json-h1": [createConnectTransport(h1), false],
  "grpc-web-h1": [createGrpcWebTransport(h1), false],
};

const results = {};
for (const [name, [transport, duplex]] of Object.entries(transports)) {
  const client = createClient(Streams, transport);
  const out = {
    unary: (await client.echoMetadata({ name: "x-who" }, { headers: { "x-who": "ada" } })).text,
    server: await collect(client.count({ n: 3n })),
    error: await errorCode(collect(client.count({ n: -1n }))),
  };
  if (duplex) {
    out.client = Number((await client.total(numbers(1, 2, 3, 4))).n);
    out.bidi = await collect(client.double(numbers(1, 2, 3)));
  }
  results[name] = out;
}
console.log(JSON.stringify(results));
