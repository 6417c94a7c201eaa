import KeywardenCore

/// What a call to a vendor is made with: the key and the filled extras, opened from the vault for this call only.
public struct VendorCredentials: Sendable {
    public let key: Secret?
    public let extras: [String: Secret]

    public init(key: Secret?, extras: [String: Secret] = [:]) {
        self.key = key
        self.extras = extras
    }

    /// The extras as template values; blank ones count as not filled.
    var templateValues: [String: String] {
        extras.compactMapValues { $0.isBlank ? nil : $0.unprotectedString.trimmingWhitespacesAndNewlines }
    }
}
