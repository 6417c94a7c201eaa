import Crypto
import Foundation
import KeywardenCore

/// One entry of the audit log: who did what to which target, when, with a fingerprint (never the value) of any secret involved.
public struct AuditEntry: Sendable, Equatable, Codable {
    public let seq: Int
    public let at: String
    /// Who acted, such as `token:tok_…`, `cli` or `system`.
    public let actor: String
    /// What happened, such as `credential.created`.
    public let action: String
    public let targetType: String
    public let targetID: String?
    public let workspaceID: String?
    /// Canonical JSON (sorted keys) of extra facts; never a secret.
    public let details: String
    public let secretFingerprint: String?
    public let prevHash: String
    public let hash: String

    enum CodingKeys: String, CodingKey {
        case seq, at, actor, action, details, hash
        case targetType = "target_type"
        case targetID = "target_id"
        case workspaceID = "workspace_id"
        case secretFingerprint = "secret_fingerprint"
        case prevHash = "prev_hash"
    }

    /// The `prev_hash` of the first entry.
    public static let genesisHash = String(repeating: "0", count: 64)

    /// The hash of an entry's content and its predecessor's hash.
    static func computeHash(
        seq: Int, at: String, actor: String, action: String, targetType: String, targetID: String?,
        workspaceID: String?, details: String, secretFingerprint: String?, prevHash: String
    ) -> String {
        ChainHash.of(["keywarden.audit.v1", String(seq), at, actor, action, targetType, targetID, workspaceID, details, secretFingerprint, prevHash])
    }

    /// Whether the stored hash matches the entry's content.
    var hashMatchesContent: Bool {
        hash == Self.computeHash(
            seq: seq, at: at, actor: actor, action: action, targetType: targetType, targetID: targetID,
            workspaceID: workspaceID, details: details, secretFingerprint: secretFingerprint, prevHash: prevHash
        )
    }
}

/// An audit entry about to be appended.
public struct AuditEvent: Sendable {
    public var actor: String
    public var action: String
    public var targetType: String
    public var targetID: String?
    public var workspaceID: String?
    public var details: [String: String]
    public var secretFingerprint: String?

    public init(
        actor: String, action: String, targetType: String, targetID: String? = nil,
        workspaceID: String? = nil, details: [String: String] = [:], secretFingerprint: String? = nil
    ) {
        self.actor = actor
        self.action = action
        self.targetType = targetType
        self.targetID = targetID
        self.workspaceID = workspaceID
        self.details = details
        self.secretFingerprint = secretFingerprint
    }
}

/// The hash of a chained entry: SHA-256 of its parts, each length-prefixed (an absent part has its own marker), so no
/// two different entries hash the same bytes. Shared by the audit log and the custody log.
enum ChainHash {
    static func of(_ parts: [String?]) -> String {
        var hasher = SHA256()
        for part in parts {
            guard let part else {
                hasher.update(data: [0xFF, 0xFF, 0xFF, 0xFF])
                continue
            }
            let bytes = Array(part.utf8)
            let n = UInt32(truncatingIfNeeded: bytes.count)
            hasher.update(data: [UInt8(n >> 24 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)])
            hasher.update(data: bytes)
        }
        return Hex.encode(hasher.finalize())
    }
}

/// An entry of a hash chain: its place, its predecessor's hash, its own, and whether its content gives its hash.
protocol ChainedEntry {
    var seq: Int { get }
    var prevHash: String { get }
    var hash: String { get }
    var hashMatchesContent: Bool { get }
}

extension AuditEntry: ChainedEntry {}
extension CustodyEntry: ChainedEntry {}

/// Walking a hash chain from its first entry: the audit log's, and each workspace's custody log.
enum ChainWalk {
    /// Reads the chain a page at a time (`page(after, limit)`: the entries after `seq` `after`, in order) from the entry
    /// whose `prev_hash` is `genesis`, and names the first entry that does not follow from its predecessor.
    static func verify<Entry: ChainedEntry>(genesis: String, pageSize: Int,
                                            page: (_ after: Int, _ limit: Int) async throws -> [Entry]) async throws -> (entries: Int, broken: (seq: Int, reason: String)?) {
        var expectedSeq = 1
        var prevHash = genesis
        var checked = 0
        while true {
            let entries = try await page(expectedSeq - 1, pageSize)
            for entry in entries {
                if entry.seq != expectedSeq {
                    return (checked, (entry.seq, "sequence gap: expected entry \(expectedSeq), found \(entry.seq) (entries were removed)"))
                }
                if entry.prevHash != prevHash {
                    return (checked, (entry.seq, "its prev_hash does not match the hash of entry \(entry.seq - 1) (an entry before it was changed, removed or inserted)"))
                }
                if !entry.hashMatchesContent {
                    return (checked, (entry.seq, "its content does not match its hash (the entry was edited)"))
                }
                checked += 1
                expectedSeq += 1
                prevHash = entry.hash
            }
            if entries.count < pageSize { break }
        }
        return (checked, nil)
    }
}
