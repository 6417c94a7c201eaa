import Crypto
import Testing
import KeywardenCore
@testable import KeywardenVault

/// The digests and MACs the vault writes as hex go through ``Hex``'s contiguous path: the same text as the byte walk.
@Suite("Hex of digests")
struct HexDigestTests {
    static func reference<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        bytes.map { byte in
            let digits = Array("0123456789abcdef".utf8)
            return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]], as: UTF8.self)
        }.joined()
    }

    @Test("SHA-256 and SHA-512 digests, HMACs, a MAC's prefix, and token digests read as before")
    func digestsAgree() {
        for text in ["", "a", "kw_0123456789abcdef", "héllo 😀", String(repeating: "x", count: 1000)] {
            let bytes = Array(text.utf8)
            let sha256 = SHA256.hash(data: bytes)
            #expect(Hex.encode(sha256) == Self.reference(sha256))
            #expect(Hex.encode(SHA512.hash(data: bytes)) == Self.reference(SHA512.hash(data: bytes)))
            let mac = HMAC<SHA256>.authenticationCode(for: bytes, using: SymmetricKey(data: Array("key".utf8)))
            #expect(Hex.encode(mac) == Self.reference(mac))
            #expect(Hex.encode(mac.prefix(12)) == Self.reference(mac.prefix(12)))
            #expect(AccessToken.digest(of: text) == Self.reference(sha256))
        }
    }
}
