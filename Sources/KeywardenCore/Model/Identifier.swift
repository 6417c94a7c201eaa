/// Random identifiers for rows: a short type prefix and 26 lowercase base-32 characters (130 bits).
public enum Identifier {
    private static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz")

    /// A new id such as `key_3f9k…`.
    public static func make(_ prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let body = (0..<26).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] }
        return prefix + "_" + String(body)
    }
}
