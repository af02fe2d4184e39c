import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { HotSeries } from "../../src/telemetry/series.ts";

describe("HotSeries", () => {
  it("exposes a histogram with cumulative buckets, +Inf, sum and count", async () => {
    const reg = new Registry();
    const h = new HotSeries(reg, { name: "t_seconds", help: "test", labelNames: ["route"], buckets: [0.1, 1, 10] });
    for (const v of [0.05, 0.1, 0.5, 5, 50]) h.observe(v, "a");
    h.observe(2, "b");
    const text = await reg.metrics();
    expect(text).toContain("# TYPE t_seconds histogram");
    expect(text).toContain('t_seconds_bucket{route="a",le="0.1"} 2');
    expect(text).toContain('t_seconds_bucket{route="a",le="1"} 3');
    expect(text).toContain('t_seconds_bucket{route="a",le="10"} 4');
    expect(text).toContain('t_seconds_bucket{route="a",le="+Inf"} 5');
    expect(text).toContain('t_seconds_sum{route="a"} 55.65');
    expect(text).toContain('t_seconds_count{route="a"} 5');
    expect(text).toContain('t_seconds_bucket{route="b",le="1"} 0');
    expect(text).toContain('t_seconds_count{route="b"} 1');
  });

  it("exposes a counter as the sum of increments per label set", async () => {
    const reg = new Registry();
    const c = new HotSeries(reg, { name: "t_total", help: "test", labelNames: ["route", "outcome"] });
    c.observe(1, "a", "ok");
    c.observe(1, "a", "ok");
    c.observe(1, "a", "no");
    const text = await reg.metrics();
    expect(text).toContain("# TYPE t_total counter");
    expect(text).toContain('t_total{route="a",outcome="ok"} 2');
    expect(text).toContain('t_total{route="a",outcome="no"} 1');
    c.reset();
    expect(await reg.metrics()).not.toContain('t_total{route="a"');
    c.observe(1, "a", "ok");
    expect(await reg.metrics()).toContain('t_total{route="a",outcome="ok"} 1');
  });

  it("keeps label sets apart when one value is a prefix or a join of others", async () => {
    const reg = new Registry();
    const c = new HotSeries(reg, { name: "t3_total", help: "test", labelNames: ["a", "b", "c"] });
    c.observe(1, "x", "y\u0000z", "w");
    c.observe(2, "x\u0000y", "z", "w");
    c.observe(4, "x", "y", "z\u0000w");
    const text = await reg.metrics();
    expect(text).toContain('t3_total{a="x",b="y\u0000z",c="w"} 1');
    expect(text).toContain('t3_total{a="x\u0000y",b="z",c="w"} 2');
    expect(text).toContain('t3_total{a="x",b="y",c="z\u0000w"} 4');
  });
});
