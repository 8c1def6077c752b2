// The hot path's SHA-256 (src/shared/sha256.ts) gives node:crypto's digest, in workerd, for what
// event ids and key hashes are made of: any length around the block boundaries, any script,
// lone surrogates, a text past the buffer it keeps; so no event's derived id and no key's hash changed.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/shared/sha256";

const reference = (text: string) => createHash("sha256").update(text).digest("hex");

describe("sha256Hex", () => {
  it("gives the FIPS 180-4 test vectors", () => {
    expect(sha256Hex("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")).toBe(
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    );
  });

  it("gives node:crypto's digest for every length from 0 to 300, in four scripts", () => {
    const chars = ["a", "é", "中", "😀"];
    const differ: string[] = [];
    for (let n = 0; n <= 300; n++) {
      for (const [k, ch] of chars.entries()) {
        const text = Array.from({ length: n }, (_, i) =>
          i % 5 === k ? ch : String.fromCharCode(33 + ((i * 7) % 90)),
        ).join("");
        if (sha256Hex(text) !== reference(text)) differ.push(`${n}/${ch}`);
      }
    }
    expect(differ).toEqual([]);
  });

  it("encodes lone surrogates as createHash does (U+FFFD)", () => {
    for (const text of ["\ud800", "a\udc00b", "\udbff", '["x","\ud83d"]'])
      expect(sha256Hex(text)).toBe(reference(text));
  });

  it("hashes a text larger than its kept buffer, and a small one after it, alike", () => {
    const large = `{"data":"${"x€".repeat(60_000)}"}`;
    expect(sha256Hex(large)).toBe(reference(large));
    expect(sha256Hex("after")).toBe(reference("after"));
    const middle = "ü".repeat(20_000);
    expect(sha256Hex(middle)).toBe(reference(middle));
    expect(sha256Hex("abc")).toBe(reference("abc"));
  });
});
