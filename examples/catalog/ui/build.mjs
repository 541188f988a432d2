// Bundles the catalog's page (src/main.js, the connect-es code generated into
// src/gen, and the npm packages they import) into app.js, which is committed:
// the catalog serves the page without Node. `scripts/build-ui` runs this after
// generating src/gen; tests/e2e/test_browser_page.py runs it into a temporary
// file and checks app.js is what these sources build.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
await build({
  entryPoints: [here + "src/main.js"],
  outfile: process.argv[2] ?? here + "app.js",
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  legalComments: "none",
  logLevel: "warning",
});
