// Vite builds the GUI into dist/, with relative asset URLs so that it works under any
// prefix (/gui/ behind the local gateway or the Kubernetes ingress).
//
// `npm run dev` serves it with hot reload and proxies the gateway's public routes to
// API_GATEWAY (default: the local gateway of `cargo xtask up`), the notifier's stream
// unbuffered and without a timeout, so that the page talks to a real system as it does
// when the gateway serves it.
import { defineConfig, type ProxyOptions } from "vite";
import { LOCAL_GATEWAY_URL, ROUTES } from "./src/platform.generated";

const gateway = (process.env.API_GATEWAY || LOCAL_GATEWAY_URL).replace(/\/+$/, "");

function proxy(streaming: boolean): ProxyOptions {
  return {
    target: gateway,
    changeOrigin: true,
    ...(streaming
      ? {
          // Server-Sent Events: no timeout on a stream that stays open for hours, and every
          // event passed on as it comes (the proxy pipes chunks; nothing may compress them).
          timeout: 0,
          proxyTimeout: 0,
          headers: { "accept-encoding": "identity" },
        }
      : {}),
  };
}

export default defineConfig({
  base: "./",
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true },
  server: {
    host: "127.0.0.1",
    proxy: Object.fromEntries(ROUTES.map((route) => [route.prefix, proxy(route.streaming)])),
  },
  test: { environment: "node", include: ["test/**/*.test.ts"] },
});
