import Foundation
import KeywardenCore

/// A grant for the later legs of a resumable upload a vendor opened through Keywarden.
///
/// Google's upload session URL is itself the credential: the client sends the file's bytes to it without an API key.
/// Keywarden hands the client that URL rewritten under its own face, so the bytes pass through it; the rewritten URL
/// carries this grant (`kw_session`), which lets exactly that session's legs (same provider, path and `upload_id`,
/// within an hour) through without a token. It is signed (HMAC-SHA256) with a key derived for this purpose alone from the
/// vault's fingerprint key, shared by every instance on the database, and never forwarded to the vendor.
public struct UploadSessionGrant: Sendable, Equatable {
    public let providerID: String
    public let workspaceID: String?
    /// The vendor path the session's legs go to (`/upload/v1beta/files`).
    public let path: String
    public let uploadID: String
    /// When the grant ends (seconds since 1970).
    public let expires: Int

    /// The query parameter that carries a grant.
    public static let parameter = "kw_session"
    /// How long a grant lets an upload's legs through.
    public static let lifetime = 3600

    public init(providerID: String, workspaceID: String?, path: String, uploadID: String, expires: Int) {
        self.providerID = providerID
        self.workspaceID = workspaceID
        self.path = path
        self.uploadID = uploadID
        self.expires = expires
    }

    /// What the signature covers: every field, the path and upload id included (they are read from the request), each
    /// prefixed by its length in bytes, so no field's text can stand for another's.
    var signed: String {
        ["keywarden.upload-session.v1", providerID, workspaceID ?? "-", "\(expires)", path, uploadID]
            .map { "\($0.utf8.count):\($0)" }.joined(separator: "|")
    }

    /// Whether a path is an upload's (`/upload/…`): a grant is made, and accepted, for nothing else.
    public static func isUploadPath(_ path: String) -> Bool {
        path.hasPrefix("/upload/")
    }

    /// The grant as it travels: `v1.<provider>.<workspace or ->.<expires>.<signature>`; `nil` when nothing can sign.
    public func encoded(sign: (String) -> String?) -> String? {
        guard let signature = sign(signed) else { return nil }
        return ["v1", providerID, workspaceID ?? "-", "\(expires)", signature].joined(separator: ".")
    }

    /// The grant `text` makes for a request to `providerID`'s `path` with `uploadID`, when its signature holds and it has
    /// not ended; `nil` otherwise.
    public static func verify(_ text: String, providerID: String, path: String, uploadID: String?, now: Date = Date(),
                              sign: (String) -> String?) -> UploadSessionGrant? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let seconds = Int(now.timeIntervalSince1970)
        guard parts.count == 5, parts[0] == "v1", parts[1] == providerID, let uploadID, !uploadID.isEmpty, isUploadPath(path),
              let expires = UntrustedNumber.integer(parts[3], clampedTo: 0...Int(Int32.max)),
              // Within its lifetime from now: a grant never outlives the hour it was made for, however it was signed.
              expires >= seconds, expires <= seconds + lifetime + 60 else { return nil }
        let grant = UploadSessionGrant(providerID: providerID, workspaceID: parts[2] == "-" ? nil : String(parts[2]), path: path,
                                       uploadID: uploadID, expires: expires)
        guard let expected = sign(grant.signed), Self.equalInConstantTime(expected, String(parts[4])) else { return nil }
        return grant
    }

    /// Compares two strings without stopping at the first difference.
    static func equalInConstantTime(_ a: String, _ b: String) -> Bool {
        let (x, y) = (Array(a.utf8), Array(b.utf8))
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
