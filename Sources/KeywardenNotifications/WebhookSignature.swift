import Crypto
import Foundation
import KeywardenCore

/// The signature a webhook receiver checks: `X-Keywarden-Signature: t=<unix seconds>,v1=<hex>`,
/// where the hex is HMAC-SHA256 over `"<t>.<body>"` with the webhook's signing secret.
/// The timestamp lets a receiver refuse replays.
public enum WebhookSignature {
    public static let header = "X-Keywarden-Signature"

    /// The header value for a body sent at `timestamp`.
    public static func sign(body: Data, secret: Secret, timestamp: Int) -> String {
        "t=\(timestamp),v1=\(mac(body: body, secret: secret, timestamp: timestamp))"
    }

    /// Whether a header value is a valid signature of `body` (within `tolerance` seconds of `now`).
    public static func verify(header: String, body: Data, secret: Secret, now: Int, tolerance: Int = 300) -> Bool {
        var timestamp: Int?
        var signatures: [String] = []
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { continue }
            if pair[0] == "t" { timestamp = Int(pair[1]) }
            if pair[0] == "v1" { signatures.append(pair[1]) }
        }
        guard let timestamp, abs(now - timestamp) <= tolerance else { return false }
        let expected = Array(mac(body: body, secret: secret, timestamp: timestamp).utf8)
        return signatures.contains { candidate in
            let bytes = Array(candidate.utf8)
            guard bytes.count == expected.count else { return false }
            return zip(bytes, expected).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
        }
    }

    static func mac(body: Data, secret: Secret, timestamp: Int) -> String {
        let key = secret.withPlaintext { SymmetricKey(data: $0) }
        var message = Data("\(timestamp).".utf8)
        message.append(body)
        return Hex.encode(HMAC<SHA256>.authenticationCode(for: message, using: key))
    }
}
