import Foundation

extension ProviderDefinition {
    /// The longest value accepted for any field, in Unicode code points (as JSON Schema's `maxLength` counts).
    public static let maximumFieldLength = 4096
    /// The largest value of an integer field (a default max tokens).
    public static let maximumFieldInteger = 10_000_000

    /// Checks submitted extras against this provider's card: known fields only, each value of its kind.
    /// Blank values are allowed here (they mean "keep what is stored").
    public func validateExtras(_ extras: [String: Secret], fieldPrefix: String = "extras") throws(KeywardenError) {
        for (id, value) in extras {
            let path = "\(fieldPrefix).\(id)"
            guard let field = extraFields.first(where: { $0.id == id }) else {
                throw .invalid(path, "\(displayName) has no field '\(id)'.", code: "unknown_field")
            }
            if value.isBlank { continue }
            guard value.characterCount <= Self.maximumFieldLength else {
                throw .invalid(path, "\(field.label) is longer than \(Self.maximumFieldLength) characters.")
            }
            let text = value.unprotectedString.trimmingCharacters(in: .whitespacesAndNewlines)
            switch field.kind {
            case .url:
                if let problem = OutboundURL.problem(text) {
                    throw .invalid(path, "\(field.label) \(problem).")
                }
            case .integer:
                guard let number = UntrustedNumber.integer(text), (1...Self.maximumFieldInteger).contains(number) else {
                    throw .invalid(path, "\(field.label) must be a whole number from 1 to \(Self.maximumFieldInteger).")
                }
            case .text, .secret:
                // By byte: "\r\n" is one Character, equal to neither "\r" nor "\n".
                guard !text.utf8.contains(where: { $0 == 0x0A || $0 == 0x0D }) else {
                    throw .invalid(path, "\(field.label) must be one line.")
                }
            }
            if let pattern = field.pattern, !pattern.matches(text) {
                throw .invalid(path, "\(field.label) must match \(pattern) (letters, digits and the listed signs only).")
            }
        }
    }

    /// Checks a submitted API key: a single line of printable text within the length limit.
    public func validateKey(_ key: Secret, field: String = "api_key") throws(KeywardenError) {
        guard keyField != nil else {
            throw .invalid(field, "\(displayName) takes no API key.", code: "unknown_field")
        }
        guard key.characterCount <= Self.maximumFieldLength else {
            throw .invalid(field, "The API key is longer than \(Self.maximumFieldLength) characters.")
        }
        let printable = key.withPlaintext { bytes in bytes.allSatisfy { $0 >= 0x20 && $0 != 0x7F } }
        guard printable else { throw .invalid(field, "The API key must be one line of printable characters.") }
    }

    /// The required fields (key included) that are not filled, in card order.
    public func missingRequiredFields(hasKey: Bool, extrasSet: [String]) -> [ProviderField] {
        fields.filter { field in
            guard field.required else { return false }
            return field.id == Self.keyFieldID ? !hasKey : !extrasSet.contains(field.id)
        }
    }
}
