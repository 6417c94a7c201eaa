/// What one SQL statement may hold on both engines.
package enum StatementLimits {
    /// The most values one statement binds: SQLite allows 32,766, PostgreSQL 65,535, and both run the same statements.
    package static let maxBinds = 30_000

    /// How many rows of `columns` bound values each fit in one statement.
    package static func rowsPerStatement(bindingColumns columns: Int) -> Int {
        max(1, maxBinds / max(1, columns))
    }
}
