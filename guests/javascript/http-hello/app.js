// An HTTP component in JavaScript written only against wasi:http, through
// the `fetch` event of componentize-js's engine, as a Spin or wasmCloud
// JavaScript component is: no Berth SDK. It does what the Rust `http-hello`
// guest does:
// - `GET …/fetch?to=HOST:PORT` fetches `http://HOST:PORT/` and answers with
//   what came back (502 and the error if the host refused it);
// - anything else answers `hello from wasi:http: METHOD PATH`, with the
//   request's `x-user` header (if any) as `x-seen-user` and its body's
//   length as `x-body-length`.

addEventListener("fetch", (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  const url = new URL(request.url);
  const target = url.searchParams.get("to");
  if (url.pathname.endsWith("/fetch") && target) return relay(target);
  const body = new Uint8Array(await request.arrayBuffer());
  const headers = { "content-type": "text/plain", "x-body-length": String(body.length) };
  const user = request.headers.get("x-user");
  if (user !== null) headers["x-seen-user"] = user;
  const text = `hello from wasi:http: ${request.method} ${url.pathname}${url.search}`;
  return new Response(text, { headers });
}

async function relay(target) {
  try {
    const response = await fetch(`http://${target}/`);
    return new Response(`fetched ${response.status}: ${await response.text()}`);
  } catch (e) {
    return new Response(`outbound refused: ${e}`, { status: 502 });
  }
}
