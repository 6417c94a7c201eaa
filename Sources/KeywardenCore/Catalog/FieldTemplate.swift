/// A string with `{field_id}` placeholders filled from a card's fields, such as `https://{region}.api.cognitive.microsoft.com`.
public struct FieldTemplate: Sendable, Equatable {
    public let text: String
    /// The field ids named by the template, in order of appearance (found once, when the template is made).
    public let placeholders: [String]

    public init(_ text: String) {
        self.text = text
        placeholders = Self.placeholders(in: text)
    }

    static func placeholders(in text: String) -> [String] {
        var names: [String] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            let afterOpen = rest.index(after: open)
            guard let close = rest[afterOpen...].firstIndex(of: "}") else { break }
            names.append(String(rest[afterOpen..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return names
    }

    /// Fills every placeholder; returns `nil` when one of them has no value.
    public func render(_ values: [String: String]) -> String? {
        var result = text
        for name in placeholders {
            guard let value = values[name], !value.isEmpty else { return nil }
            result = result.replacingOccurrences(of: "{\(name)}", with: value)
        }
        return result
    }
}
