import path from "node:path";

/** The package root (config/, routes.yaml, package.json), whether this runs from src/cli/ or from the build in dist/src/cli/. */
export function packageRoot(): string {
  const up = path.resolve(import.meta.dirname, "..", "..");
  return path.basename(up) === "dist" ? path.dirname(up) : up;
}
