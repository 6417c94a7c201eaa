import SQLKit

/// A case-insensitive "contains" filter on a text column, safe on every engine: the searched text is bound (never
/// spliced into the statement), lowercased, and its LIKE wildcards (`%`, `_`) and the escape character (`\`) are
/// escaped, so they match themselves.
///
/// SQLite's `lower()` folds ASCII letters only (PostgreSQL's folds every letter): on SQLite, a non-ASCII capital in
/// the column matches only a search written with the same capital.
enum ContainsPattern {
    /// The LIKE pattern that matches `text` anywhere, literally.
    static func pattern(_ text: String) -> String {
        "%" + text.lowercased()
            .replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_") + "%"
    }

    /// `lower(column) LIKE '%text%' ESCAPE '\'`, with the column named by the caller (fixed text, never from a request).
    static func predicate(column: String, contains text: String) -> SQLQueryString {
        "lower(\(ident: column)) LIKE \(bind: pattern(text)) ESCAPE '\\'"
    }
}
