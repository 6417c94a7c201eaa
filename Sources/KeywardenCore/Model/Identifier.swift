/// Random identifiers for rows: a short type prefix and 26 lowercase base-32 characters (130 bits).
public enum Identifier {
    private static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)

    /// A new id such as `key_3f9k…`.
    public static func make(_ prefix: String) -> String {
        // 26 characters of a 32-letter alphabet: 5 random bits each, from three draws of 64 bits (each draw
        // is a system call; one per character showed on the gateway's profile, which makes an id per call).
        var generator = SystemRandomNumberGenerator()
        var bits: (UInt64, UInt64, UInt64) = (generator.next(), generator.next(), generator.next())
        let body = withUnsafeBytes(of: &bits) { random in
            (0..<26).map { index -> UInt8 in
                let bit = index * 5
                let pair = UInt16(random[bit / 8]) | UInt16(random[bit / 8 + 1]) << 8
                return alphabet[Int((pair >> UInt16(bit % 8)) & 31)]
            }
        }
        return prefix + "_" + String(decoding: body, as: UTF8.self)
    }
}
