// Builds the UI into the Python package, where the server serves it under /ui/.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

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
});
