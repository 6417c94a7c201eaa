import Foundation
import KeywardenCore

/// The outcome of testing a key: a status, the vendor's own message (scrubbed, cut short), and an operator's hint.
public struct VerificationResult: Sendable, Equatable {
    public var status: VerificationStatus
    public var message: String
    public var checkedAt: Date
    public var latencyMilliseconds: Int
    /// How many models the key can list, when the call lists them.
    public var modelsAvailable: Int?
    /// How long the vendor asked to wait (429).
    public var retryAfter: Int?
    /// The HTTP status the vendor answered, if it answered.
    public var httpStatus: Int?

    public init(status: VerificationStatus, message: String, checkedAt: Date = Date(), latencyMilliseconds: Int = 0, modelsAvailable: Int? = nil, retryAfter: Int? = nil, httpStatus: Int? = nil) {
        self.status = status
        self.message = message
        self.checkedAt = checkedAt
        self.latencyMilliseconds = latencyMilliseconds
        self.modelsAvailable = modelsAvailable
        self.retryAfter = retryAfter
        self.httpStatus = httpStatus
    }

    /// What an operator should do about this status.
    public var hint: String { status.hint(retryAfter: retryAfter) }
}

