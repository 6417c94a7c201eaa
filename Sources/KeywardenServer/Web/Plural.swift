/// A count with its noun, singular or plural as English writes it ("1 call", "3 calls", "0 keys").
enum Plural {
    static func count(_ n: Int, _ singular: String, plural: String? = nil) -> String {
        "\(n) \(n == 1 ? singular : plural ?? singular + "s")"
    }
}
