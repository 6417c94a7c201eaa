/// Removes secrets from text a vendor sent back (some vendors echo part of a key in their errors).
public struct SecretScrubber: Sendable {
    let secrets: [String]

    public init(secrets: [String]) {
        self.secrets = secrets.filter { $0.count >= 4 }
    }

    /// The text with each secret, and any long fragment of one, replaced by `[redacted]`.
    public func scrub(_ text: String) -> String {
        var result = text
        for secret in secrets.sorted(by: { $0.count > $1.count }) {
            result = result.replacingOccurrences(of: secret, with: "[redacted]")
            // Vendors often echo a masked key such as "sk-proj-****...abcd1234": remove any run of 8+ characters of the key.
            let characters = Array(secret)
            if characters.count >= 8 {
                for length in stride(from: min(characters.count, 24), through: 8, by: -1) {
                    for start in 0...(characters.count - length) {
                        let fragment = String(characters[start..<start + length])
                        if result.contains(fragment) { result = result.replacingOccurrences(of: fragment, with: "[redacted]") }
                    }
                }
            }
        }
        return result
    }
}
