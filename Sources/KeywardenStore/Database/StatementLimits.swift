/// What one SQL statement may hold on both engines.
package enum StatementLimits {
    /// The most values one statement binds: SQLite allows 32,766, PostgreSQL 65,535, and both run the same statements.
    package static let maxBinds = 30_000

    /// How many rows of `columns` bound values each fit in one statement that binds `others` values besides.
    package static func rowsPerStatement(bindingColumns columns: Int, others: Int = 0) -> Int {
        max(1, (maxBinds - others) / max(1, columns))
    }
}
