import KeywardenApp
import Foundation
import KeywardenCore
import KeywardenStore

/// `{has_key, hint, status}`: all the API ever says about a stored key.
struct KeyStateBody: Encodable {
    let hasKey: Bool
    let hint: String
    let status: String

    init(hasKey: Bool, hint: String, status: VerificationStatus) {
        self.hasKey = hasKey
        // An unreadable key shows as "No key": no hint either.
        self.hint = hasKey ? hint : ""
        self.status = status.rawValue
    }
}

/// A platform provider card.
struct PlatformCardBody: Encodable {
    let provider: String
    let name: String
    let category: String
    let summary: String?
    let fields: [ProviderField]
    let models: [CuratedModel]
    let defaultModel: String?
    let defaultModelCustom: Bool
    let displayOrder: Int
    let active: Bool
    let ready: Bool
    let configured: Bool
    let missingFields: [String]
    let key: KeyStateBody
    let extrasSet: [String]
    let lastVerifiedAt: Date?
    let lastError: String?
    let updatedAt: String
    let updatedBy: String?
    let lifecycle: KeyLifecycleBody?

    init(_ card: PlatformCard) {
        provider = card.provider.id
        name = card.provider.displayName
        category = card.provider.category.rawValue
        summary = card.provider.summary
        fields = card.provider.fields
        models = card.provider.models
        defaultModel = card.state.defaultModel
        defaultModelCustom = card.defaultModelIsCustom
        displayOrder = card.state.displayOrder
        active = card.state.active
        ready = card.ready
        configured = card.configured
        missingFields = card.missingFields.map(\.id)
        key = KeyStateBody(hasKey: card.hasKey, hint: card.credential?.hint ?? "", status: card.status)
        extrasSet = card.credential?.extrasSet ?? []
        lastVerifiedAt = card.credential?.lastVerifiedAt
        lastError = card.credential?.lastError
        updatedAt = max(card.state.updatedAt, card.credential.map { Timestamp.string($0.updatedAt) } ?? "")
        updatedBy = card.state.updatedBy ?? card.credential?.updatedBy
        lifecycle = card.credential.map { KeyLifecycleBody($0.lifecycle) }
    }
}

/// A workspace key.
struct KeyBody: Encodable {
    let id: String
    let workspaceID: String?
    let provider: String
    let providerName: String
    let category: String
    let description: String
    let hasKey: Bool
    let hint: String
    let status: String
    /// `true` while the workspace's own KMS key refuses Keywarden (key access revoked by the customer).
    let customerKeyRevoked: Bool
    let role: String
    let weight: Int
    let position: Int
    let active: Bool
    let defaultModel: String?
    let defaultModelCustom: Bool
    let extrasSet: [String]
    let lastVerifiedAt: Date?
    let lastError: String?
    let createdAt: Date
    let createdBy: String
    let updatedAt: Date
    let updatedBy: String
    let lifecycle: KeyLifecycleBody

    init(_ details: KeyDetails) {
        let c = details.credential
        id = c.id
        workspaceID = c.scope.workspaceID
        provider = c.providerID
        providerName = details.provider?.displayName ?? c.providerID
        category = details.provider?.category.rawValue ?? ProviderCategory.other.rawValue
        description = c.description
        hasKey = details.hasKey
        hint = details.hasKey ? c.hint : ""
        status = details.status.rawValue
        customerKeyRevoked = details.customerKeyRevoked
        role = c.role.rawValue
        weight = c.weight
        position = c.position
        active = c.active
        defaultModel = c.defaultModel
        defaultModelCustom = details.defaultModelIsCustom
        extrasSet = c.extrasSet
        lastVerifiedAt = c.lastVerifiedAt
        lastError = c.lastError
        createdAt = c.createdAt
        createdBy = c.createdBy
        updatedAt = c.updatedAt
        updatedBy = c.updatedBy
        lifecycle = KeyLifecycleBody(c.lifecycle)
    }
}

/// A key's expiry, rotate-by age and rotation under way (masked hints only, never a secret).
struct KeyLifecycleBody: Encodable {
    struct Staged: Encodable {
        let hint: String
        let status: String
        let message: String?
        let stagedAt: Date
        let stagedBy: String
        let checkedAt: Date?
    }
    struct Previous: Encodable {
        let hint: String
        let until: Date
    }
    let expiresAt: Date?
    let rotateByDays: Int?
    let keySetAt: Date?
    let rotationDueAt: Date?
    let staged: Staged?
    let previous: Previous?

    init(_ l: KeyLifecycle) {
        expiresAt = l.expiresAt
        rotateByDays = l.rotateByDays
        keySetAt = l.keySetAt
        rotationDueAt = l.rotationDueAt
        staged = l.staged.map { Staged(hint: $0.hint, status: $0.status.rawValue, message: $0.message, stagedAt: $0.stagedAt, stagedBy: $0.stagedBy, checkedAt: $0.checkedAt) }
        previous = l.previous.map { Previous(hint: $0.hint, until: $0.until) }
    }
}

struct WorkspaceBody: Encodable {
    let id: String
    let name: String
    let byokAllowed: Bool
    let exclusive: Bool
    let notificationEmail: String?
    /// The plan whose default limits it gets where it sets none.
    let plan: String?
    /// When the platform's keys stand in for its own (`nil`: its plan's, else the platform's default).
    let platformFallback: String?
    let createdAt: String
    let updatedAt: String
    /// The keys it stores (platform admins' list only).
    let keys: Int?
    /// Its gateway calls since the first of the month, UTC (platform admins' list only).
    let callsThisMonth: Int?

    init(_ w: Workspace) {
        id = w.id
        name = w.name
        byokAllowed = w.byokAllowed
        exclusive = w.exclusive
        notificationEmail = w.notificationEmail
        plan = w.plan
        platformFallback = w.platformFallback?.rawValue
        createdAt = w.createdAt
        updatedAt = w.updatedAt
        keys = nil
        callsThisMonth = nil
    }

    /// A summary of the list, with its counts when `counts`.
    init(_ summary: WorkspaceSummary, counts: Bool) {
        let w = summary.workspace
        id = w.id
        name = w.name
        byokAllowed = w.byokAllowed
        exclusive = w.exclusive
        notificationEmail = w.notificationEmail
        plan = w.plan
        platformFallback = w.platformFallback?.rawValue
        createdAt = w.createdAt
        updatedAt = w.updatedAt
        keys = counts ? summary.keys : nil
        callsThisMonth = counts ? summary.callsThisMonth : nil
    }
}

struct MemberBody: Encodable {
    let id: String
    let workspaceID: String
    let name: String
    let role: String
    let createdAt: String
    let createdBy: String

    init(_ m: Member) {
        id = m.id
        workspaceID = m.workspaceID
        name = m.name
        role = m.role.rawValue
        createdAt = m.createdAt
        createdBy = m.createdBy
    }
}

struct TokenBody: Encodable {
    let id: String
    let name: String
    let kind: String
    let prefix: String
    let workspaceID: String?
    let memberID: String?
    let role: String?
    let permissions: [String]
    let createdAt: String
    let createdBy: String
    let lastUsedAt: String?

    init(_ t: TokenRecord) {
        id = t.id
        name = t.name
        kind = t.kind.rawValue
        prefix = t.displayPrefix
        workspaceID = t.workspaceID
        memberID = t.memberID
        role = t.role?.rawValue
        permissions = t.principal.permissions.map(\.rawValue).sorted()
        createdAt = t.createdAt
        createdBy = t.createdBy
        lastUsedAt = t.lastUsedAt
    }
}

/// A page of items with its position.
struct PageBody<Item: Encodable>: Encodable {
    let items: [Item]
    let total: Int
    let page: Int
    let perPage: Int
}

/// A human message and the object it is about.
struct MessageBody<Item: Encodable>: Encodable {
    let message: String
    let item: Item
    let itemKey: String

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: DynamicKey.self)
        try container.encode(message, forKey: DynamicKey("message"))
        try container.encode(item, forKey: DynamicKey(itemKey))
    }
}

struct MessageOnlyBody: Encodable {
    let message: String
}

struct DynamicKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
