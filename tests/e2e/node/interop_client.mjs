// gRPC's interop test cases (grpc/grpc doc/interop-test-descriptions.md) from
// @grpc/grpc-js, the service loaded from the grpc.testing .proto files by
// @grpc/proto-loader. Usage:
//   node interop_client.mjs PROTO_DIR HOST:PORT
// Prints one JSON object, each case's name to "passed" or to why it failed,
// for tests/e2e/test_interop.py to judge.
import assert from "node:assert/strict";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const [protoDir, target] = process.argv.slice(2);
const definition = protoLoader.loadSync("src/proto/grpc/testing/test.proto", {
  includeDirs: [protoDir],
  keepCase: true,
  defaults: true,
});
const testing = grpc.loadPackageDefinition(definition).grpc.testing;
const client = new testing.TestService(target, grpc.credentials.createInsecure());
const unimplemented = new testing.UnimplementedService(target, grpc.credentials.createInsecure());

const SPECIAL = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n";
const zeros = (n) => ({ body: Buffer.alloc(n) });
const isZeros = (body, n) => body.length === n && body.every((b) => b === 0);
const params = (sizes, body) => ({
  response_parameters: sizes.map((size) => ({ size })),
  ...(body === undefined ? {} : { payload: zeros(body) }),
});

function unary(method, request, metadata = new grpc.Metadata(), stub = client) {
  // The answer, the initial metadata and the status (with its trailing metadata).
  return new Promise((resolve) => {
    const out = {};
    const call = stub[method](request, metadata, (error, answer) => {
      out.error = error;
      out.answer = answer;
    });
    call.on("metadata", (m) => (out.initial = m));
    call.on("status", (s) => resolve({ ...out, status: s }));
  });
}

function finished(call) {
  // Every message of a response stream, and its status (never thrown).
  return new Promise((resolve) => {
    const answers = [];
    let initial;
    call.on("metadata", (m) => (initial = m));
    call.on("data", (d) => answers.push(d));
    call.on("error", () => {});
    call.on("status", (status) => resolve({ answers, status, initial }));
  });
}

function nextMessage(call) {
  return new Promise((resolve, reject) => {
    call.once("data", resolve);
    call.once("error", reject);
  });
}

function echoMetadata() {
  const metadata = new grpc.Metadata();
  metadata.set("x-grpc-test-echo-initial", "test_initial_metadata_value");
  metadata.set("x-grpc-test-echo-trailing-bin", Buffer.from([0xab, 0xab, 0xab]));
  return metadata;
}

function assertEchoed(initial, status) {
  assert.deepEqual(initial.get("x-grpc-test-echo-initial"), ["test_initial_metadata_value"]);
  assert.deepEqual(status.metadata.get("x-grpc-test-echo-trailing-bin"), [
    Buffer.from([0xab, 0xab, 0xab]),
  ]);
}

async function statusEcho(message) {
  const response_status = { code: 2, message };
  const one = await unary("UnaryCall", { response_status });
  assert.equal(one.status.code, 2);
  assert.equal(one.status.details, message);
  const call = client.FullDuplexCall();
  call.write({ response_status });
  call.end();
  const { status } = await finished(call);
  assert.equal(status.code, 2);
  assert.equal(status.details, message);
}

const cases = {
  async empty_unary() {
    const { answer, status } = await unary("EmptyCall", {});
    assert.equal(status.code, grpc.status.OK);
    assert.notEqual(answer, undefined);
  },
  async large_unary() {
    const { answer, status } = await unary("UnaryCall", {
      response_size: 314159,
      payload: zeros(271828),
    });
    assert.equal(status.code, grpc.status.OK);
    assert.ok(isZeros(answer.payload.body, 314159));
  },
  async client_streaming() {
    const answer = await new Promise((resolve, reject) => {
      const call = client.StreamingInputCall((e, a) => (e ? reject(e) : resolve(a)));
      for (const n of [27182, 8, 1828, 45904]) call.write({ payload: zeros(n) });
      call.end();
    });
    assert.equal(answer.aggregated_payload_size, 74922);
  },
  async server_streaming() {
    const sizes = [31415, 9, 2653, 58979];
    const { answers, status } = await finished(client.StreamingOutputCall(params(sizes)));
    assert.equal(status.code, grpc.status.OK);
    assert.deepEqual(
      answers.map((a) => a.payload.body.length),
      sizes,
    );
    assert.ok(answers.every((a, i) => isZeros(a.payload.body, sizes[i])));
  },
  async ping_pong() {
    const call = client.FullDuplexCall();
    const done = finished(call);
    for (const [size, body] of [
      [31415, 27182],
      [9, 8],
      [2653, 1828],
      [58979, 45904],
    ]) {
      const reply = nextMessage(call);
      call.write(params([size], body));
      assert.ok(isZeros((await reply).payload.body, size));
    }
    call.end();
    const { answers, status } = await done;
    assert.equal(status.code, grpc.status.OK);
    assert.equal(answers.length, 4);
  },
  async empty_stream() {
    const call = client.FullDuplexCall();
    call.end();
    const { answers, status } = await finished(call);
    assert.equal(status.code, grpc.status.OK);
    assert.equal(answers.length, 0);
  },
  async custom_metadata() {
    const one = await unary(
      "UnaryCall",
      { response_size: 314159, payload: zeros(271828) },
      echoMetadata(),
    );
    assert.equal(one.status.code, grpc.status.OK);
    assertEchoed(one.initial, one.status);
    const call = client.FullDuplexCall(echoMetadata());
    call.write(params([314159], 271828));
    call.end();
    const { answers, status, initial } = await finished(call);
    assert.equal(status.code, grpc.status.OK);
    assert.equal(answers.length, 1);
    assertEchoed(initial, status);
  },
  async status_code_and_message() {
    await statusEcho("test status message");
  },
  async special_status_message() {
    await statusEcho(SPECIAL);
  },
  async unimplemented_method() {
    const { status } = await unary("UnimplementedCall", {});
    assert.equal(status.code, grpc.status.UNIMPLEMENTED);
  },
  async unimplemented_service() {
    const { status } = await unary("UnimplementedCall", {}, new grpc.Metadata(), unimplemented);
    assert.equal(status.code, grpc.status.UNIMPLEMENTED);
  },
  async cancel_after_begin() {
    const call = client.StreamingInputCall(() => {});
    const done = finished(call);
    call.cancel();
    assert.equal((await done).status.code, grpc.status.CANCELLED);
  },
  async cancel_after_first_response() {
    const call = client.FullDuplexCall();
    const done = finished(call);
    const reply = nextMessage(call);
    call.write(params([31415], 27182));
    assert.ok(isZeros((await reply).payload.body, 31415));
    call.cancel();
    assert.equal((await done).status.code, grpc.status.CANCELLED);
  },
  async timeout_on_sleeping_server() {
    const call = client.FullDuplexCall({ deadline: Date.now() + 1 });
    const done = finished(call);
    call.write({ payload: zeros(27182) });
    assert.equal((await done).status.code, grpc.status.DEADLINE_EXCEEDED);
  },
};

const results = {};
for (const [name, run] of Object.entries(cases)) {
  try {
    await run();
    results[name] = "passed";
  } catch (err) {
    results[name] = String(err?.stack ?? err);
  }
}
client.close();
unimplemented.close();
// Exit once printed: a cancelled call's handles need not keep Node alive.
process.stdout.write(JSON.stringify(results), () => process.exit(0));
