import KeywardenCore

/// A validated page request: `page` from 1, `per_page` from 1 to ``maximumPerPage``.
public struct Pagination: Sendable, Equatable {
    public static let defaultPerPage = 20
    public static let maximumPerPage = 100
    /// The last page one may ask for (an offset of at most ten million rows).
    public static let maximumPage = 100_000

    public let page: Int
    public let perPage: Int

    /// Validates raw query values; out-of-range values are refused, never silently changed.
    public init(page: Int?, perPage: Int?) throws(KeywardenError) {
        let page = page ?? 1
        let perPage = perPage ?? Self.defaultPerPage
        guard (1...Self.maximumPage).contains(page) else {
            throw .invalid("page", "page must be between 1 and \(Self.maximumPage).", code: "invalid_pagination")
        }
        guard (1...Self.maximumPerPage).contains(perPage) else {
            throw .invalid("per_page", "per_page must be between 1 and \(Self.maximumPerPage).", code: "invalid_pagination")
        }
        self.page = page
        self.perPage = perPage
    }

    public var offset: Int { (page - 1).saturatingMultiplied(by: perPage) }
}
