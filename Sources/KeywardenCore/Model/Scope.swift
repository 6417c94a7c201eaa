/// Who owns a credential: the platform itself, or one workspace.
public enum Scope: Hashable, Sendable, CustomStringConvertible {
    case platform
    case workspace(String)

    /// The workspace id, or `nil` for the platform.
    public var workspaceID: String? {
        if case .workspace(let id) = self { return id }
        return nil
    }

    /// A stable text form (`platform` or `workspace:<id>`), used in associated data and audit entries.
    public var description: String {
        switch self {
        case .platform: return "platform"
        case .workspace(let id): return "workspace:\(id)"
        }
    }

    /// Parses the text form written by ``description``.
    public init?(_ text: String) {
        if text == "platform" {
            self = .platform
        } else if text.hasPrefix("workspace:"), text.count > "workspace:".count {
            self = .workspace(String(text.dropFirst("workspace:".count)))
        } else {
            return nil
        }
    }
}
