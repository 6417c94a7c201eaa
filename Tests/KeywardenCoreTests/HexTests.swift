import Foundation
import Testing
import KeywardenCore

/// ``Hex/encode(_:)`` written into the string's storage, pinned to the byte-by-byte walk it replaced.
@Suite("Hex")
struct HexTests {
    /// The encoder as it was: a generic walk appending two digits per byte to an array.
    static func reference<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    @Test("every byte value, every length up to 100, contiguous or not, reads as before")
    func agreesWithReference() {
        let all = (0...255).map(UInt8.init)
        #expect(Hex.encode(all) == Self.reference(all))
        #expect(Hex.encode([UInt8]()) == "" && Hex.encode([0x00, 0x0F, 0xF0, 0xFF, 0xA5]) == "000ff0ffa5")
        var random = SplitMix(seed: 0x4E7)
        for length in 0...100 {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let expected = Self.reference(bytes)
            #expect(Hex.encode(bytes) == expected)
            #expect(Hex.encode(Data(bytes)) == expected)
            #expect(Hex.encode(bytes[...]) == expected)
            #expect(Hex.encode(bytes.lazy.map { $0 }) == expected)
            #expect(Hex.encode(AnySequence(bytes)) == expected)
            #expect(Hex.encode(bytes.prefix(length / 2)) == Self.reference(bytes.prefix(length / 2)))
            #expect(Hex.encode(bytes).utf8.count == 2 * length)
        }
    }
}
