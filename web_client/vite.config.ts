import { defineConfig } from "vite";

// Everything is bundled into files served from our own origin: no CDN, no inline script or style,
// so the page runs under the strict Content-Security-Policy CloudFront sends.
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist", // tests build a test-mode copy elsewhere with --outDir
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    // The module-preload polyfill would be inlined; every supported browser has modulepreload.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
  server: { host: "127.0.0.1", port: 5173 },
});
