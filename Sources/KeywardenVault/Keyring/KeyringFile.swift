import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A keyring stored as JSON in a file readable only by its owner (mode 0600).
///
/// Writes go to a temporary file in the same directory, are synced, then renamed over the old
/// file, so a crash leaves either the old keyring or the new one, never half of one.
public struct KeyringFile: Sendable {
    public let url: URL

    public init(url: URL) {
        self.url = url
    }

    /// Whether the file exists.
    public var exists: Bool { FileManager.default.fileExists(atPath: url.path) }

    /// Reads the keyring. A file holding only a base64 key (as mounted secrets often are) is a one-key keyring.
    public func read() throws(KeyringError) -> Keyring {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw .fileUnreadable(path: url.path, reason: Self.reason(error))
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if !text.hasPrefix("{") {
            let key = try MasterKey(base64: text, state: .active)
            return try Keyring(keys: [key])
        }
        let document: Document
        do {
            document = try JSONDecoder.keyring.decode(Document.self, from: data)
        } catch {
            throw .fileMalformed(path: url.path, detail: "not a keyring document")
        }
        guard document.format == Document.formatName else {
            throw .fileMalformed(path: url.path, detail: "format is '\(document.format)'")
        }
        guard document.version == Document.currentVersion else {
            throw .fileMalformed(path: url.path, detail: "version \(document.version) is not supported by this keywarden")
        }
        var keys: [MasterKey] = []
        for entry in document.keys {
            let key: MasterKey
            do {
                key = try MasterKey(base64: entry.material, state: entry.state, createdAt: entry.createdAt)
            } catch {
                throw .fileMalformed(path: url.path, detail: "key \(entry.id): \(error.description)")
            }
            guard key.id == entry.id else { throw .idMismatch(id: entry.id) }
            keys.append(key)
        }
        return try Keyring(keys: keys)
    }

    /// Writes the keyring atomically with mode 0600.
    public func write(_ keyring: Keyring) throws(KeyringError) {
        let document = Document(
            format: Document.formatName, version: Document.currentVersion,
            keys: keyring.keys.map { .init(id: $0.id, material: $0.base64Material, state: $0.state, createdAt: $0.createdAt) }
        )
        let data: Data
        do {
            data = try JSONEncoder.keyring.encode(document)
        } catch {
            throw .fileNotWritable(path: url.path, reason: "could not encode the keyring")
        }
        try Self.writeAtomically(data, to: url, mode: 0o600)
    }

    /// Creates the file with a new keyring; refuses to overwrite an existing one.
    public func create() throws(KeyringError) -> Keyring {
        guard !exists else { throw .fileExists(path: url.path) }
        let keyring = Keyring.generate()
        try write(keyring)
        return keyring
    }

    /// The file's modification time and inode, to notice when another process rewrote it.
    public func stamp() -> FileStamp? {
        var info = stat()
        guard stat(url.path, &info) == 0 else { return nil }
        #if canImport(Darwin)
        let seconds = info.st_mtimespec.tv_sec, nanos = info.st_mtimespec.tv_nsec
        #else
        let seconds = info.st_mtim.tv_sec, nanos = info.st_mtim.tv_nsec
        #endif
        return FileStamp(inode: UInt64(info.st_ino), seconds: Int64(seconds), nanoseconds: Int64(nanos), size: Int64(info.st_size))
    }

    /// Identifies one version of a file on disk.
    public struct FileStamp: Equatable, Sendable {
        let inode: UInt64
        let seconds: Int64
        let nanoseconds: Int64
        let size: Int64
    }

    static func writeAtomically(_ data: Data, to url: URL, mode: mode_t) throws(KeyringError) {
        let directory = url.deletingLastPathComponent().path
        // A fresh name, created exclusively and never through a link: a file or symlink planted at a guessable
        // name cannot be written through or raced.
        var random = SystemRandomNumberGenerator()
        let temporary = url.path + ".tmp-\(getpid())-\(String(random.next() as UInt64, radix: 36))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .fileNotWritable(path: url.path, reason: String(cString: strerror(errno))) }
        let written = data.withUnsafeBytes { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            var offset = 0
            while offset < buffer.count {
                let n = Glibc_write(fd, base.advanced(by: offset), buffer.count - offset)
                if n <= 0 { return -1 }
                offset += n
            }
            return offset
        }
        let synced = fsync(fd) == 0
        _ = fchmod(fd, mode)
        close(fd)
        guard written == data.count, synced else {
            unlink(temporary)
            throw .fileNotWritable(path: url.path, reason: "write or fsync failed")
        }
        guard rename(temporary, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw .fileNotWritable(path: url.path, reason: reason)
        }
        let dirFD = open(directory, O_RDONLY)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            close(dirFD)
        }
    }

    static func reason(_ error: any Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if nsError.domain == NSCocoaErrorDomain, nsError.code == NSFileReadNoSuchFileError {
            return "no such file"
        }
        if nsError.domain == NSCocoaErrorDomain, nsError.code == NSFileReadNoPermissionError {
            return "permission denied"
        }
        return nsError.localizedDescription
    }

    struct Document: Codable {
        static let formatName = "keywarden-keyring"
        static let currentVersion = 1

        struct Entry: Codable {
            let id: String
            let material: String
            let state: MasterKey.State
            let createdAt: Date

            enum CodingKeys: String, CodingKey {
                case id, material, state
                case createdAt = "created_at"
            }
        }

        let format: String
        let version: Int
        let keys: [Entry]
    }
}

#if canImport(Glibc)
private let Glibc_write = Glibc.write
#else
private let Glibc_write = Darwin.write
#endif

extension JSONEncoder {
    static var keyring: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }
}

extension JSONDecoder {
    static var keyring: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
