// Builds the UI into the Python package, where the server serves it under /ui/.
// `npm run dev` serves the sources with hot reload and passes API calls to a running server
// (LOGHARBOR_SERVER, default http://127.0.0.1:8080).
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const server = process.env.LOGHARBOR_SERVER ?? "http://127.0.0.1:8080";

export default defineConfig({
  base: "/ui/",
  build: {
    outDir: fileURLToPath(new URL("../src/logharbor/server/ui/dist", import.meta.url)),
    emptyOutDir: true,
    // no inline polyfill script: the server's CSP allows scripts from 'self' only
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    target: "es2022",
  },
  server: {
    host: "127.0.0.1",
    proxy: { "/api": { target: server, changeOrigin: false } },
  },
});
