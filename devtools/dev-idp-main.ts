/** `npm run dev-idp [-- --port 9400 --gateway http://127.0.0.1:8080]`: the local OpenID provider, and how to point the gateway at it. */
import { parseArgs } from "node:util";
import { DEV_CLIENT_ID, DEV_CLIENT_SECRET, DEV_OPERATOR_GROUP, DEV_USERS, startDevIdp } from "./dev-idp.ts";

const { values } = parseArgs({ options: { port: { type: "string", default: "9400" }, gateway: { type: "string", multiple: true } } });
const gateways = values.gateway ?? ["http://127.0.0.1:8080", "http://localhost:8080"];
const idp = await startDevIdp({ port: Number(values.port) });
idp.start(gateways.map((g) => `${g.replace(/\/+$/, "")}/ui/auth/callback`));
process.stdout.write(`dev identity provider (not for production) at ${idp.issuer}
users: ${DEV_USERS.map((u) => `${u.id} (password ${u.password})`).join(", ")}
carol is in the group ${DEV_OPERATOR_GROUP}: with the last line below she signs in as an operator.

start the gateway against it, in another shell:

  PATGATE_OIDC_ISSUER=${idp.issuer} PATGATE_OIDC_AUDIENCE=${DEV_CLIENT_ID} PATGATE_OIDC_JWKS_URL=${idp.issuer}/jwks \\
  PATGATE_OIDC_CLIENT_ID=${DEV_CLIENT_ID} PATGATE_OIDC_CLIENT_SECRET=${DEV_CLIENT_SECRET} \\
  PATGATE_OIDC_LOGIN_SCOPES="openid profile email groups" PATGATE_OIDC_OPERATOR_CLAIM=groups PATGATE_OIDC_OPERATOR_VALUE=${DEV_OPERATOR_GROUP} npm start

then open ${gateways[0]}/ui/
`);
const stop = (): void => void idp.close().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
