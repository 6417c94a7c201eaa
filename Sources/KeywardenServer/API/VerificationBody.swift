import Foundation
import KeywardenProviders

/// The answer of a Test: `{status, message, hint, checked_at, latency_ms, models_available?, retry_after?}`.
struct VerificationBody: Encodable {
    let status: String
    let message: String
    let hint: String
    let checkedAt: Date
    let latencyMs: Int
    let modelsAvailable: Int?
    let retryAfter: Int?

    init(_ result: VerificationResult) {
        status = result.status.rawValue
        message = result.message
        hint = result.hint
        checkedAt = result.checkedAt
        latencyMs = result.latencyMilliseconds
        modelsAvailable = result.modelsAvailable
        retryAfter = result.retryAfter
    }
}

/// A save answered together with the verification it asked for (`?verify=true`).
struct SavedAndVerifiedBody<Item: Encodable>: Encodable {
    let message: String
    let item: Item
    let itemKey: String
    let verification: VerificationBody?

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: DynamicKey.self)
        try container.encode(message, forKey: DynamicKey("message"))
        try container.encode(item, forKey: DynamicKey(itemKey))
        try container.encodeIfPresent(verification, forKey: DynamicKey("verification"))
    }
}
