// Resumable SSE with the `eventsource` package (the WHATWG EventSource for Node):
// WatchPrices on a catalog whose streams last a second or two. The stream ends,
// EventSource reconnects by itself with Last-Event-ID, and the changes made
// while it was away arrive: the fetch it reconnects with makes them first.
// Usage: node sse_resume.mjs HTTP_URL TOKEN PRODUCT_ID CATEGORY; prints one JSON object.
import { EventSource } from "eventsource";

const [httpUrl, token, productId, category] = process.argv.slice(2);

async function setPrice(price) {
  const r = await fetch(`${httpUrl}/products/${productId}`, {
    method: "PATCH",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ price }),
  });
  if (r.status !== 200) throw new Error(`PATCH answered ${r.status}`);
}

const requests = []; // the Last-Event-ID each connection was opened with
const events = [];
let connections = 0;
const es = new EventSource(`${httpUrl}/products:watchPrices?category=${category}`, {
  fetch: async (input, init) => {
    connections += 1;
    requests.push(new Headers(init.headers).get("last-event-id"));
    if (connections === 2) {
      // Made while no stream is open: only a resumed stream can see them.
      await setPrice("12.00");
      await setPrice("13.00");
    }
    return fetch(input, init);
  },
});

const done = new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`timed out: ${JSON.stringify(events)}`)), 30000);
  es.addEventListener("open", () => {
    if (connections === 1) setPrice("11.00").catch(reject);
  });
  es.addEventListener("message", (event) => {
    events.push({ id: event.lastEventId, price: JSON.parse(event.data).new_price });
    if (events.length === 3) {
      clearTimeout(timer);
      resolve();
    }
  });
});
await done;
es.close();
console.log(JSON.stringify({ events, requests, connections }));
