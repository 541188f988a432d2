// The npm `xmlrpc` package (not ours) calls the catalog's XML-RPC wire:
// node xmlrpc_client.mjs URL TOKEN prints what it got, as one JSON object.
import xmlrpc from "xmlrpc";

const [url, token] = process.argv.slice(2);
const { hostname, port } = new URL(url);
const client = xmlrpc.createClient({
  host: hostname,
  port: Number(port),
  path: "/RPC2",
  headers: { Authorization: `Bearer ${token}` },
});

function call(method, params) {
  return new Promise((resolve) => {
    client.methodCall(method, params, (error, value) => {
      if (error) resolve({ fault: { code: error.faultCode, string: error.faultString } });
      else resolve({ value });
    });
  });
}

const methods = await call("system.listMethods", []);
const made = await call("CreateProduct", [
  { product: { name: "From npm", price: "2.25", category: "npm", tags: ["a", "b"] } },
]);
const got = await call("GetProduct", [made.value.id]);
const missing = await call("GetProduct", [{ id: 987654321 }]);
const big = await call("GetProduct", [{ id: 2 ** 40 }]);
const multi = await call("system.multicall", [
  [
    { methodName: "GetProduct", params: [made.value.id] },
    { methodName: "NoSuchMethod", params: [] },
  ],
]);
console.log(JSON.stringify({ methods, made, got, missing, big, multi }));
