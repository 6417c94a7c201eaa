import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A raw TCP connection to a local port, for what an HTTP client library will not do (half a head, a close mid-call).
public final class RawTCPConnection {
    public let fd: Int32

    /// - Parameter receiveBuffer: the socket's `SO_RCVBUF`, set before connecting (so the window it offers is small from
    ///   the start): a client that stops reading fills it, and then the server's side, quickly.
    public init(port: Int, receiveBuffer: Int? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer.map(Int32.init) {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure.connect }
    }

    public enum Failure: Error { case connect }

    public func send(_ text: String) {
        _ = text.utf8CString.withUnsafeBufferPointer { Glibc.send(fd, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) }
    }

    /// Seconds until the server closed the connection (reading and dropping what it sends), or `nil` within `limit`.
    public func secondsUntilClosed(limit: Double) -> Double? {
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let started = Date()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date().timeIntervalSince(started) < limit {
            let read = recv(fd, &buffer, buffer.count, 0)
            if read == 0 || (read < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { return Date().timeIntervalSince(started) }
        }
        return nil
    }

    /// What arrives until `marker` has (or `limit` seconds pass, or the peer closes).
    public func read(until marker: String, limit: Double) -> String {
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let started = Date()
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date().timeIntervalSince(started) < limit, !String(decoding: received, as: UTF8.self).contains(marker) {
            let read = recv(fd, &buffer, buffer.count, 0)
            if read == 0 || (read < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { break }
            if read > 0 { received += buffer[0..<read] }
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// Closes the connection now (as a client that gives up does).
    public func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }

    private var closed = false

    deinit { close() }
}
