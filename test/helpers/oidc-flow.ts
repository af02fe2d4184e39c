/**
 * The web page's OIDC sign-in without a browser: what a browser does on
 * `/ui/auth/login` → the dev OpenID provider's sign-in form → the callback,
 * with the redirects followed by hand and each side's cookies kept apart.
 */
import { expect } from "vitest";

/** Cookies by name, as a browser keeps them for one origin (attributes ignored). */
class Jar {
  readonly #cookies = new Map<string, string>();

  take(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair = ""] = c.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      if (/Max-Age=0/i.test(c) || /expires=Thu, 01 Jan 1970/i.test(c)) this.#cookies.delete(name);
      else this.#cookies.set(name, pair.slice(eq + 1).trim());
    }
  }

  header(): string {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  get(name: string): string | undefined {
    return this.#cookies.get(name);
  }
}

/**
 * Signs `user` (password = user name) in to the page at `base` through the
 * dev provider at `issuer`; the gateway's session cookie as `name=value`.
 */
export async function signInThroughDevIdp(base: string, issuer: string, user: string): Promise<string> {
  const gw = new Jar();
  const idp = new Jar();
  const jarFor = (url: string): Jar => (url.startsWith(issuer) ? idp : gw);

  const get = async (url: string): Promise<Response> => {
    const jar = jarFor(url);
    const res = await fetch(url, { redirect: "manual", headers: { cookie: jar.header() } });
    jar.take(res);
    return res;
  };
  /** Follows redirects from `res` (at `url`) until a page answers or the gateway sends the browser back to itself. */
  const follow = async (url: string, res: Response): Promise<{ url: string; res: Response }> => {
    for (let hops = 0; res.status >= 300 && res.status < 400; hops++) {
      expect(hops, "too many redirects").toBeLessThan(10);
      const next = new URL(res.headers.get("location") ?? "", url).href;
      if (next === `${base}/ui/` || next.startsWith(`${base}/ui/?`)) return { url: next, res };
      url = next;
      res = await get(url);
    }
    return { url, res };
  };

  // The form page of the provider, reached from the gateway's login redirect.
  const form = await follow(`${base}/ui/auth/login`, await get(`${base}/ui/auth/login`));
  expect(form.res.status, await form.res.clone().text()).toBe(200);
  const action = /<form method="post" action="([^"]+)"/.exec(await form.res.text())?.[1];
  expect(action).toBeDefined();
  const post = new URL(action ?? "", form.url).href;
  const submitted = await fetch(post, {
    method: "POST",
    redirect: "manual",
    headers: { cookie: idp.header(), "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ login: user, password: user }).toString(),
  });
  idp.take(submitted);
  const back = await follow(post, submitted);
  expect(back.url, "the gateway sends the browser back to the page").toBe(`${base}/ui/`);
  const name = ["__Host-patgate_session", "patgate_session"].find((n) => gw.get(n) !== undefined);
  expect(name, "a session cookie").toBeDefined();
  return `${name}=${gw.get(name ?? "")}`;
}
