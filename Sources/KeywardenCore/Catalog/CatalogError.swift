/// Why a provider catalog was refused; the message names the entry and the problem.
public struct CatalogError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The provider id (or `#index` when the entry has no readable id), or `nil` for the file as a whole.
    public let entry: String?
    public let problem: String

    public init(entry: String?, problem: String) {
        self.entry = entry
        self.problem = problem
    }

    public var description: String {
        if let entry {
            return "provider catalog entry '\(entry)': \(problem)"
        }
        return "provider catalog: \(problem)"
    }
}
