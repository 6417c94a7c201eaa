import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A child process started with `posix_spawn`, its output captured, for tests.
///
/// Foundation's `Process.run()` on Linux (swift-corelibs-foundation before PR #5472) copies a whole 256-byte
/// `d_name` out of each `/proc/self/fd` entry and crashes the test process now and then when the entry ends a page;
/// a suite that starts hundreds of children hit it. This type spawns without that path: the child's standard
/// streams are pipes (or `/dev/null`), every other descriptor is closed in the child, and it runs in a process
/// group of its own, as Foundation's did.
public final class ChildProcess: Sendable {
    /// The child's process id.
    public let pid: pid_t
    private let exit = ExitStatus()
    private let ended = DispatchGroup()
    private let drained = DispatchGroup()
    private let out = OutputBuffer()
    private let err = OutputBuffer()

    /// The status `waitpid` reported, set once by the reaper thread.
    private final class ExitStatus: Sendable {
        let value = Mutex<Int32?>(nil)
    }

    /// What the child's standard output and error are.
    public enum Output: Sendable {
        /// Captured in separate buffers.
        case captured
        /// Both captured in the standard output's buffer.
        case merged
        /// `/dev/null`.
        case discarded
    }

    public enum SpawnError: Error, CustomStringConvertible {
        case failed(String, Int32)

        public var description: String {
            switch self {
            case .failed(let path, let code): return "could not start \(path): \(String(cString: strerror(code)))"
            }
        }
    }

    /// Starts `executable` (an absolute path) with `arguments`; `environment` is the child's whole environment
    /// (this process's when nil); `stdin`, when given, is written to its standard input, which is then closed.
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdin: Data? = nil,
                output: Output = .captured) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)

        var parentEnds: [Int32] = []
        var childEnds: [Int32] = []
        defer { for fd in childEnds { close(fd) } }
        func pipeEnds() throws -> (read: Int32, write: Int32) {
            var fds: [Int32] = [-1, -1]
            guard makePipe(&fds) == 0 else {
                for fd in parentEnds { close(fd) }
                throw SpawnError.failed(executable, errno)
            }
            return (fds[0], fds[1])
        }

        var stdinWriter: Int32 = -1
        if stdin != nil {
            let ends = try pipeEnds()
            stdinWriter = ends.write
            parentEnds.append(ends.write)
            childEnds.append(ends.read)
            posix_spawn_file_actions_adddup2(&actions, ends.read, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        var readers: [(fd: Int32, buffer: OutputBuffer)] = []
        switch output {
        case .discarded:
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        case .merged:
            let ends = try pipeEnds()
            parentEnds.append(ends.read)
            childEnds.append(ends.write)
            readers.append((ends.read, out))
            posix_spawn_file_actions_adddup2(&actions, ends.write, 1)
            posix_spawn_file_actions_adddup2(&actions, ends.write, 2)
        case .captured:
            for (target, buffer) in [(Int32(1), out), (Int32(2), err)] {
                let ends = try pipeEnds()
                parentEnds.append(ends.read)
                childEnds.append(ends.write)
                readers.append((ends.read, buffer))
                posix_spawn_file_actions_adddup2(&actions, ends.write, target)
            }
        }
        if let closeFrom = closeFromAction { _ = closeFrom(&actions, 3) }

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let pairs = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let envp = pairs.map { strdup($0) } + [nil]
        defer { for pointer in envp { free(pointer) } }

        var spawned: pid_t = 0
        let code = posix_spawn(&spawned, executable, &actions, &attributes, argv, envp)
        guard code == 0 else {
            for fd in parentEnds { close(fd) }
            throw SpawnError.failed(executable, code)
        }
        let child = spawned
        pid = child
        runningChildren.withLock { _ = $0.insert(child) }
        _ = killChildrenAtExit

        for reader in readers {
            drained.enter()
            let group = drained
            let thread = Thread {
                var chunk = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let count = chunk.withUnsafeMutableBytes { read(reader.fd, $0.baseAddress, $0.count) }
                    if count > 0 {
                        reader.buffer.append(Data(chunk[0..<count]))
                    } else if count < 0, errno == EINTR {
                        continue
                    } else {
                        break
                    }
                }
                close(reader.fd)
                group.leave()
            }
            thread.start()
        }
        ended.enter()
        let exit = self.exit, group = ended
        let reaper = Thread {
            var status: Int32 = 0
            while waitpid(child, &status, 0) < 0, errno == EINTR {}
            exit.value.withLock { $0 = status }
            _ = runningChildren.withLock { $0.remove(child) }
            group.leave()
        }
        reaper.start()

        if let stdin {
            stdin.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(stdinWriter, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
                    if written < 0, errno == EINTR { continue }
                    if written <= 0 { break }
                    offset += written
                }
            }
            close(stdinWriter)
        }
    }

    /// Whether the child has not yet ended.
    public var isRunning: Bool { exit.value.withLock { $0 == nil } }

    /// The child's exit code, or 128 + the signal that ended it; nil while it runs.
    public var terminationStatus: Int32? {
        exit.value.withLock { value in
            value.map { status in
                let signal = status & 0x7f
                return signal == 0 ? (status >> 8) & 0xff : 128 + signal
            }
        }
    }

    /// What the child wrote to its standard output (and error, when merged) so far.
    public var stdoutData: Data { out.data }
    public var stdout: String { String(decoding: out.data, as: UTF8.self) }
    public var stderr: String { String(decoding: err.data, as: UTF8.self) }

    /// Sends a signal.
    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Blocks until the child has ended and its output is read (output held open by a grandchild: at most 5 s more).
    public func waitUntilExit() {
        ended.wait()
        _ = drained.wait(timeout: .now() + 5)
    }

    /// Waits for the child to end, without blocking a thread; kills it after `timeout`.
    public func wait(timeout: Duration) async {
        let deadline = ContinuousClock.now + timeout
        while isRunning, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if isRunning { kill(pid, SIGKILL) }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                self.waitUntilExit()
                continuation.resume()
            }
        }
    }

    /// Runs `executable` to completion and returns its exit status and output.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           stdin: Data? = nil, output: Output = .captured) throws -> (status: Int32, stdout: Data, stderr: String) {
        let child = try ChildProcess(executable, arguments, environment: environment, stdin: stdin, output: output)
        child.waitUntilExit()
        return (child.terminationStatus ?? -1, child.stdoutData, child.stderr)
    }

    deinit {
        if isRunning { kill(pid, SIGKILL) }
    }
}

/// Bytes a reader thread appends while tests read them.
final class OutputBuffer: Sendable {
    private let bytes = Mutex<Data>(Data())
    func append(_ chunk: Data) { bytes.withLock { $0.append(chunk) } }
    var data: Data { bytes.withLock { $0 } }
}

/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which Swift's Glibc module does not export.
private let closeFromAction: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
}()

/// `pipe2(fds, O_CLOEXEC)` (found at run time: Swift's Glibc module does not export it); `pipe` and `FD_CLOEXEC`
/// where it is missing, when a child spawned in between might inherit the pipe, unless `closefrom` closed it there.
private func makePipe(_ fds: UnsafeMutablePointer<Int32>) -> Int32 {
    if let pipe2 = pipe2Function { return pipe2(fds, O_CLOEXEC) }
    guard pipe(fds) == 0 else { return -1 }
    _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
    _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
    return 0
}

private let pipe2Function: (@convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32)? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "pipe2") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32).self)
}()

/// Every child a test started that has not ended: killed when the test process exits, so a test that failed before
/// stopping its servers (or stopped them in a task that never ran) leaves none behind to load the next run.
let runningChildren = Mutex<Set<Int32>>([])

private let killChildrenAtExit: Void = {
    atexit {
        for pid in runningChildren.withLock({ $0 }) { kill(pid, SIGKILL) }
    }
}()
