import Foundation

/// A key's life: when it expires, how old it may grow before it should be rotated, and a rotation under way.
///
/// A guided rotation keeps the key's id (bindings and callers do not change): a new secret is **staged** beside the
/// current one and tested, then **promoted** (it serves; the old secret becomes the fallback of the same key for a
/// grace period), and the old secret is removed when the grace period ends or the rotation is finished.
public struct KeyLifecycle: Sendable, Equatable {
    /// When the vendor's key stops working, if the operator knows it.
    public var expiresAt: Date?
    /// How many days a secret may serve before it is due for rotation.
    public var rotateByDays: Int?
    /// When the current secret was stored (the start of its age).
    public var keySetAt: Date?
    /// A new secret waiting to be promoted.
    public var staged: StagedKey?
    /// The secret a promotion replaced, still tried when the new one is refused, until its grace period ends.
    public var previous: PreviousKey?
    /// The expiry date an expiry notice was sent for (one notice per date).
    public var expiryNoticeFor: Date?
    /// The `keySetAt` a rotation-due notice was sent for (one notice per secret).
    public var rotationNoticeFor: Date?

    /// The longest rotate-by age and grace period accepted, in days.
    public static let maximumDays = 3650

    public init(expiresAt: Date? = nil, rotateByDays: Int? = nil, keySetAt: Date? = nil, staged: StagedKey? = nil, previous: PreviousKey? = nil,
                expiryNoticeFor: Date? = nil, rotationNoticeFor: Date? = nil) {
        self.expiresAt = expiresAt
        self.rotateByDays = rotateByDays
        self.keySetAt = keySetAt
        self.staged = staged
        self.previous = previous
        self.expiryNoticeFor = expiryNoticeFor
        self.rotationNoticeFor = rotationNoticeFor
    }

    /// Checks an expiry date and a rotate-by age a person set (400 naming the field otherwise). A date is in the years
    /// 2000 to 2099 as written (the API reads the year from the text; a time's offset may move the instant a day
    /// either side, which this allows).
    public static func check(expiresAt: Date?, rotateByDays: Int?) throws(KeywardenError) {
        if let expiresAt {
            let earliest = Date(timeIntervalSince1970: 946_512_000)  // 1999-12-30
            let latest = Date(timeIntervalSince1970: 4_102_617_600)  // 2100-01-03
            guard expiresAt >= earliest, expiresAt < latest else {
                throw KeywardenError.invalid("expires_at", "expires_at must be a date in the years 2000 to 2099.")
            }
        }
        if let rotateByDays {
            try NumberField.check(rotateByDays, field: "rotate_by_days", in: 1...maximumDays)
        }
    }

    /// When the current secret is due for rotation, if a rotate-by age is set.
    public var rotationDueAt: Date? {
        guard let days = rotateByDays, let keySetAt else { return nil }
        return keySetAt.addingTimeInterval(TimeInterval(days) * 86_400)
    }

    /// Whether the previous secret may still serve at `now`.
    public func previousServes(at now: Date) -> Bool {
        guard let previous else { return false }
        return previous.until > now
    }

    /// Whether an expiry notice is due at `now` with `noticeDays` of warning (and was not sent for this date).
    public func expiryNoticeDue(at now: Date, noticeDays: Int) -> Bool {
        guard let expiresAt, expiryNoticeFor != expiresAt else { return false }
        return expiresAt.timeIntervalSince(now) <= TimeInterval(noticeDays) * 86_400
    }

    /// Whether a rotation-due notice is due at `now` (and was not sent for this secret).
    public func rotationNoticeDue(at now: Date) -> Bool {
        guard let due = rotationDueAt, let keySetAt, rotationNoticeFor != keySetAt else { return false }
        return due <= now
    }

    /// Whole days from `now` to `date`, rounded down (negative once past).
    public static func days(from now: Date, to date: Date) -> Int {
        Int((date.timeIntervalSince(now) / 86_400).rounded(.down))
    }
}

/// A new secret staged for a key, with the outcome of its test.
public struct StagedKey: Sendable, Equatable {
    /// Its masked hint (`sk-…a1b2`).
    public var hint: String
    public var fingerprint: String?
    public var stagedAt: Date
    public var stagedBy: String
    /// `unverified` until tested.
    public var status: VerificationStatus
    /// The vendor's message of its test, scrubbed.
    public var message: String?
    public var checkedAt: Date?

    public init(hint: String, fingerprint: String?, stagedAt: Date, stagedBy: String, status: VerificationStatus = .unverified,
                message: String? = nil, checkedAt: Date? = nil) {
        self.hint = hint
        self.fingerprint = fingerprint
        self.stagedAt = stagedAt
        self.stagedBy = stagedBy
        self.status = status
        self.message = message
        self.checkedAt = checkedAt
    }
}

/// The secret a promotion replaced, kept as the key's fallback until `until`.
public struct PreviousKey: Sendable, Equatable {
    public var hint: String
    public var until: Date

    public init(hint: String, until: Date) {
        self.hint = hint
        self.until = until
    }
}

/// Which of a key's secrets a gateway attempt uses.
public enum KeySlot: String, Sendable, Equatable {
    /// The key's secret.
    case current
    /// The secret a rotation replaced, during its grace period.
    case previous
}
