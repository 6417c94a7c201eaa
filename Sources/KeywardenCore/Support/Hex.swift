import Foundation

/// Lowercase hexadecimal text of bytes (digests, fingerprints, signatures).
///
/// Written out by hand: `String(format: "%02x")` goes through Foundation's formatter and costs
/// microseconds per byte, which showed up on the gateway's per-request path (token digests).
public enum Hex {
    /// The text of bytes held contiguously (`[UInt8]`, `Data`, a swift-crypto digest or MAC, whose raw bytes are its
    /// elements): written straight into the string's storage, with no generic walk byte by byte (~2 µs a digest before).
    public static func encode<Bytes: Sequence & ContiguousBytes>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        bytes.withUnsafeBytes(encode(raw:))
    }

    /// The text of any sequence of bytes.
    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        if let text = bytes.withContiguousStorageIfAvailable({ encode(raw: UnsafeRawBufferPointer($0)) }) { return text }
        return Array(bytes).withUnsafeBytes(encode(raw:))
    }

    /// Two digits per byte, written into a string of exactly that length.
    static func encode(raw bytes: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { text in
            var index = 0
            for byte in bytes {
                text[index] = digit(byte >> 4)
                text[index + 1] = digit(byte & 0x0F)
                index += 2
            }
            return index
        }
    }

    /// The ASCII lowercase hex digit of a value below 16.
    @inline(__always)
    static func digit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") - 10 + value
    }
}
