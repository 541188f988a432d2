// The library of tests/gateway/library.proto written with @grpc/grpc-js: an
// upstream of the gateway that Twofold did not write
// (tests/gateway/test_grpc_js_upstream.py). Usage: node library.js INCLUDE_DIR
// GOOGLEAPIS_DIR PORT (0: any free one); prints "PORT <n>" once serving.
"use strict";

const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const [include, googleapis, port] = process.argv.slice(2);
const definition = protoLoader.loadSync("library.proto", {
  includeDirs: [include, googleapis],
  keepCase: true,
  longs: String,
  defaults: true,
});
const library = grpc.loadPackageDefinition(definition).library.v1.Library;

const books = new Map([
  ["shelves/1/books/1", { name: "shelves/1/books/1", title: "Dune", pages: "412", genre: 1 }],
]);

// Protobuf's wire format, for the google.rpc.Status of grpc-status-details-bin:
// only varints and length-delimited fields are needed.
function varint(n) {
  const out = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}
function field(number, value) {
  if (typeof value === "number") return Buffer.concat([varint(number << 3), varint(value)]);
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value, "utf8");
  return Buffer.concat([varint((number << 3) | 2), varint(bytes.length), bytes]);
}
function badRequest(violations) {
  // google.rpc.BadRequest { repeated FieldViolation field_violations = 1 { field = 1; description = 2 } }
  return Buffer.concat(
    violations.map(([f, d]) => field(1, Buffer.concat([field(1, f), field(2, d)]))),
  );
}
function failure(code, message, detailType, detail) {
  const metadata = new grpc.Metadata();
  const parts = [field(1, code), field(2, message)];
  if (detail) {
    const any = Buffer.concat([field(1, `type.googleapis.com/${detailType}`), field(2, detail)]);
    parts.push(field(3, any));
  }
  metadata.add("grpc-status-details-bin", Buffer.concat(parts));
  return { code, details: message, metadata };
}

const server = new grpc.Server();
server.addService(library.service, {
  GetBook(call, callback) {
    const book = books.get(call.request.name);
    if (!book) return callback(failure(grpc.status.NOT_FOUND, `no book ${call.request.name}`));
    callback(null, book);
  },
  ListBooks(call, callback) {
    const found = [...books.values()].filter((b) => b.name.startsWith(call.request.parent));
    callback(null, { books: found });
  },
  CreateBook(call, callback) {
    const { parent, book, book_id } = call.request;
    if (!book || !book.title) {
      const detail = badRequest([["book.title", "required"]]);
      return callback(
        failure(grpc.status.INVALID_ARGUMENT, "a book needs a title", "google.rpc.BadRequest", detail),
      );
    }
    const made = { ...book, name: `${parent}/books/${book_id || books.size + 1}` };
    books.set(made.name, made);
    callback(null, made);
  },
  DeleteBook(call, callback) {
    books.delete(call.request.name);
    callback(null, {});
  },
  MoveBook(call, callback) {
    const book = books.get(call.request.name);
    if (!book) return callback(failure(grpc.status.NOT_FOUND, `no book ${call.request.name}`));
    const moved = { ...book, name: `${call.request.destination}/books/${book.name.split("/").pop()}` };
    books.delete(book.name);
    books.set(moved.name, moved);
    callback(null, moved);
  },
  async WatchBooks(call) {
    for (let i = 0; i < call.request.count; i++) {
      if (call.cancelled) return;
      call.write({ name: `${call.request.parent}/books/${i}`, title: `Book ${i}` });
      await new Promise((resolve) => setTimeout(resolve, call.request.delay_ms));
    }
    call.end();
  },
  Echo(call, callback) {
    // Answers after delay_ms, whatever the deadline: the caller's deadline must end it.
    setTimeout(() => callback(null, { text: call.request.text }), call.request.delay_ms);
  },
});

server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err) {
    console.error(err.message);
    process.exit(1);
  }
  console.log(`PORT ${bound}`);
});
