import Foundation
import Testing
import KeywardenCore

/// The trimming shortcut (nothing to trim when the text starts and ends with visible ASCII), pinned to Foundation's.
@Suite("Trimming whitespace and newlines")
struct TrimmingTests {
    static let ends = ["", " ", "\t", "\n", "\r\n", "\u{0B}", "\u{0C}", "\u{85}", "\u{A0}", "\u{2028}", "\u{2029}", "\u{3000}", "\u{FEFF}",
                       "\u{200B}", "\u{301}", "a", "~", "!", "\u{7F}", "\u{0}", "é", "😀", "\u{212A}", "\u{600}", "x y"]
    static let middles = ["", "sk-proj-abc123", " ", "a b", "\n", "é", "\u{301}"]

    @Test("the same text as trimmingCharacters(in:) for every start, middle and end")
    func agreesWithFoundation() {
        var shortcuts = 0
        for start in Self.ends {
            for middle in Self.middles {
                for end in Self.ends {
                    let text = start + middle + end
                    #expect(text.trimmingWhitespacesAndNewlines == text.trimmingCharacters(in: .whitespacesAndNewlines), "\(Array(text.unicodeScalars))")
                    #expect(text.trimmingNewlines == text.trimmingCharacters(in: .newlines), "\(Array(text.unicodeScalars))")
                    if let first = text.utf8.first, let last = text.utf8.last, (0x21...0x7E).contains(first), (0x21...0x7E).contains(last) { shortcuts += 1 }
                }
            }
        }
        #expect(shortcuts > 20)
    }
}
