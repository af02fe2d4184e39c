/** `GET /catalog`: the scope vocabulary (entity types and the operations each accepts), for any caller. */
import { catalogView } from "../config/catalog.ts";
import type { Endpoint } from "./call.ts";
import { ok } from "./reply.ts";

export const CATALOG_ENDPOINTS: readonly Endpoint[] = [
  { method: "GET", path: "/catalog", handler: { access: "any", run: (d) => Promise.resolve(ok(catalogView(d.settings.catalog))) } },
];
