// Vite builds the GUI into dist/, with relative asset URLs so that it works under any
// prefix (/gui/ behind the local gateway or the Kubernetes ingress).
import { defineConfig } from "vite";

export default defineConfig({
  base: "./",
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true },
  test: { environment: "node", include: ["test/**/*.test.ts"] },
});
