// body.ts's number check under Node, where the Node-side tools run it and where V8's
// backtracking regex engine made zero-trimming quadratic: time must stay linear in the input.
import { describe, expect, it } from "vitest";
import { decimal } from "../../src/ingest/body";
import { cpuTime, described, growth } from "../helpers/timing";

describe("decimal", () => {
  it("trims a long run of zeros before a last digit in linear time", async () => {
    const zeros = (n: number) => "0".repeat(n);
    expect(decimal(`1.${zeros(160_000)}1`)).toBe(`0.1${zeros(160_000)}1e1`);
    expect(decimal(`${zeros(160_000)}7${zeros(160_000)}`)).toBe("0.7e160001");
    // 4× the zeros: about 4× the time when linear, 16× when quadratic (as /0+$/ was: 1.3 s for 40,000).
    const g = await growth(
      (n) => {
        decimal(`1.${zeros(n)}1`);
        decimal(`${zeros(n)}7${zeros(n)}`);
      },
      [40_000, 160_000],
      { clock: cpuTime },
    );
    expect(g.ratio, described(g)).toBeLessThan(8);
  });
});
