/// Lowercase hexadecimal text of bytes (digests, fingerprints, signatures).
///
/// Written out by hand: `String(format: "%02x")` goes through Foundation's formatter and costs
/// microseconds per byte, which showed up on the gateway's per-request path (token digests).
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var text: [UInt8] = []
        text.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
